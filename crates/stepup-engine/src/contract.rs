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

fn denied(msg: &str) -> HttpAnswer {
    HttpAnswer {
        status: 403,
        body: json!({"error": "access_denied", "message": msg}),
        www_authenticate: None,
    }
}

/// The HTTP answer for a decision, `None` only when the request may proceed: an allow, or a
/// completed step-up (its own submission succeeded; it authorises no operation: decide the
/// operation's retry, and act on that decision). A 503 (`temporarily_unavailable`, the store
/// unavailable) is best sent with `Retry-After`.
#[must_use]
pub fn http_answer(d: &Decision) -> Option<HttpAnswer> {
    http_answer_with(d, |a| a.as_str().to_string())
}

/// Like [`http_answer`], naming each AAL to clients with `acr` (a tenant's acr values, e.g.
/// URIs: SPEC §2) in `required_acr` and the header's `acr_values`.
#[must_use]
pub fn http_answer_with(d: &Decision, acr: impl Fn(Aal) -> String) -> Option<HttpAnswer> {
    let msg = d.message.as_deref().unwrap_or_default();
    match (d.kind, d.required) {
        (DecisionKind::Allow | DecisionKind::Completed, _) => None,
        (DecisionKind::StepUp, Some(r)) => {
            let max_age = r.validity.max_age_secs();
            let header = format!(
                "Bearer error=\"insufficient_user_authentication\", error_description=\"{}\", acr_values=\"{}\", max_age={max_age}",
                header_text(msg),
                header_text(&acr(r.aal))
            );
            let body = json!({
                "error": "step_up_required",
                "required_acr": acr(r.aal),
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
                    "required_acr": acr(r.aal),
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
        // A store that cannot be read or written refuses for now, not for good: 503, as the
        // HTTP layer answers it (with `Retry-After`); an integrator's review found this
        // function answering a permanent 403.
        (DecisionKind::Deny, _) if d.deny == Some(DenyReason::StoreUnavailable) => {
            Some(HttpAnswer {
                status: 503,
                body: json!({"error": "temporarily_unavailable", "message": msg}),
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

/// Reads an `amr` value with the default [`ClaimMapping`] and strength table: our factor names,
/// and the RFC 8176 values that map to one (an ambiguous value as the weakest factor it could be).
#[must_use]
pub fn amr_factor(v: &str) -> Option<Factor> {
    ClaimMapping::default().factor(v, &StrengthTable::default())
}

/// How a service reads `amr` and `acr` values (SPEC §11): configuration, with a conservative
/// default.
///
/// - Each `amr` value maps to the factors it could stand for; when there are several, it counts
///   as the **weakest** of them under the tenant's strength table (ties: the first listed). So
///   RFC 8176's `otp`, which may be a code sent by SMS, counts as `sms` and never passes an aal3
///   `webauthn|totp` requirement. Values that map to nothing (`mfa`, `face`, `user`, …) prove
///   no factor.
/// - Each `acr` value maps to an AAL; the values sent to clients are `aal1|aal2|aal3` unless
///   [`ClaimMapping::acr_values`] names others (a tenant's URIs). An unknown `acr` proves at
///   most aal1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    amr: Vec<(String, Vec<Factor>)>,
    acr: Vec<(String, Aal)>,
    acr_out: [String; 3],
}

impl Default for ClaimMapping {
    fn default() -> Self {
        use Factor::{EmailOtp, Password, Push, Sms, Totp, Voice, Webauthn};
        let mut amr: Vec<(String, Vec<Factor>)> = vec![
            // RFC 8176 values.
            ("pwd".into(), vec![Password]),
            ("pin".into(), vec![Password]),
            // A one-time password: TOTP, or a code sent by SMS, voice or email.
            ("otp".into(), vec![Sms, Voice, EmailOtp, Totp]),
            ("sms".into(), vec![Sms]),
            ("tel".into(), vec![Voice]),
            // Proof of possession of a hardware-secured key.
            ("hwk".into(), vec![Webauthn]),
            // A software-secured key may be an app's device key as well as a passkey.
            ("swk".into(), vec![Push, Webauthn]),
            ("pop".into(), vec![Push, Webauthn]),
            // Not RFC 8176, but sent by some identity providers for a FIDO2 key.
            ("fido".into(), vec![Webauthn]),
        ];
        // Our own factor names stand for themselves.
        amr.extend(
            Factor::ALL
                .iter()
                .map(|f| (f.as_str().to_string(), vec![*f])),
        );
        ClaimMapping {
            amr,
            acr: vec![
                ("aal1".into(), Aal::Aal1),
                ("aal2".into(), Aal::Aal2),
                ("aal3".into(), Aal::Aal3),
                // NIST SP 800-63 URIs (login.gov and others).
                (
                    "http://idmanagement.gov/ns/assurance/aal/1".into(),
                    Aal::Aal1,
                ),
                (
                    "http://idmanagement.gov/ns/assurance/aal/2".into(),
                    Aal::Aal2,
                ),
                (
                    "http://idmanagement.gov/ns/assurance/aal/3".into(),
                    Aal::Aal3,
                ),
            ],
            acr_out: ["aal1".into(), "aal2".into(), "aal3".into()],
        }
    }
}

impl ClaimMapping {
    /// Maps the `amr` value `value` to `candidates` (replacing its row): one factor, or the
    /// factors it could stand for (it counts as the weakest); none: it proves no factor.
    #[must_use]
    pub fn map_amr(mut self, value: &str, candidates: &[Factor]) -> Self {
        self.amr.retain(|(v, _)| v != value);
        self.amr.push((value.to_string(), candidates.to_vec()));
        self
    }
    /// Maps the `acr` value `value` to `aal` (replacing its row).
    #[must_use]
    pub fn map_acr(mut self, value: &str, aal: Aal) -> Self {
        self.acr.retain(|(v, _)| v != value);
        self.acr.push((value.to_string(), aal));
        self
    }
    /// The acr values of a tenant (SPEC §2): sent to clients for aal1, aal2 and aal3, and read
    /// in tokens as those AALs. Each is one value of RFC 9470's space-separated `acr_values`:
    /// a value with a space would be read by clients as two (the example service refuses one).
    #[must_use]
    pub fn acr_values(mut self, aal1: &str, aal2: &str, aal3: &str) -> Self {
        for (v, a) in [(aal1, Aal::Aal1), (aal2, Aal::Aal2), (aal3, Aal::Aal3)] {
            self = self.map_acr(v, a);
        }
        self.acr_out = [aal1.to_string(), aal2.to_string(), aal3.to_string()];
        self
    }
    /// The factor an `amr` value counts as: the weakest it could be under `strengths`.
    #[must_use]
    pub fn factor(&self, value: &str, strengths: &StrengthTable) -> Option<Factor> {
        let (_, candidates) = self.amr.iter().find(|(v, _)| v == value)?;
        let mut weakest: Option<Factor> = None;
        for f in candidates {
            if weakest.is_none_or(|w| strengths.strength(*f) < strengths.strength(w)) {
                weakest = Some(*f);
            }
        }
        weakest
    }
    /// The factors a token's `amr` proves.
    #[must_use]
    pub fn factors(&self, amr: &[String], strengths: &StrengthTable) -> FactorSet {
        amr.iter()
            .filter_map(|m| self.factor(m, strengths))
            .collect()
    }
    /// The AAL an `acr` value asserts, if it is known.
    #[must_use]
    pub fn aal(&self, acr: &str) -> Option<Aal> {
        self.acr.iter().find(|(v, _)| v == acr).map(|(_, a)| *a)
    }
    /// The acr value sent to clients for `aal`.
    #[must_use]
    pub fn acr_for(&self, aal: Aal) -> &str {
        let i = match aal {
            Aal::Aal1 => 0,
            Aal::Aal2 => 1,
            Aal::Aal3 => 2,
        };
        self.acr_out.get(i).map_or(aal.as_str(), String::as_str)
    }
    /// The authentication event a token proves: its `amr` factors at `auth_time`, capped at
    /// what its `acr` asserts (aal1 when absent or unknown). `None` without `auth_time`.
    #[must_use]
    pub fn event(&self, c: &Claims, strengths: &StrengthTable) -> Option<AuthEvent> {
        let at = c.auth_time?;
        let cap = c
            .acr
            .as_deref()
            .and_then(|a| self.aal(a))
            .unwrap_or(Aal::Aal1);
        Some(AuthEvent {
            at: Timestamp(at),
            factors: self.factors(&c.amr, strengths),
            cap: Some(cap),
            unnamed: false,
        })
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

/// Checks a token's claims against a requirement at `now`, its `acr` and `amr` read with the
/// default [`ClaimMapping`]. A service that configures a mapping checks with it
/// ([`check_claims_mapped`]), or a token would prove what its configuration says it does not.
///
/// # Errors
/// The first shortfall found.
pub fn check_claims(
    c: &Claims,
    r: &Requirement,
    strengths: &StrengthTable,
    now: Timestamp,
) -> Result<(), Shortfall> {
    check_claims_mapped(c, r, &ClaimMapping::default(), strengths, now)
}

/// [`check_claims`] with the service's claim mapping: `acr` and `amr` read as `mapping` reads
/// them.
///
/// # Errors
/// The first shortfall found.
pub fn check_claims_mapped(
    c: &Claims,
    r: &Requirement,
    mapping: &ClaimMapping,
    strengths: &StrengthTable,
    now: Timestamp,
) -> Result<(), Shortfall> {
    let acr = c
        .acr
        .as_deref()
        .and_then(|a| mapping.aal(a))
        .ok_or(Shortfall::Acr)?;
    if acr < r.aal {
        return Err(Shortfall::Acr);
    }
    let at = c.auth_time.ok_or(Shortfall::MaxAge)?;
    let age = crate::state::auth_age(now, Timestamp(at));
    match r.validity {
        Validity::EveryTime => return Err(Shortfall::MaxAge),
        Validity::For(max) if age.is_none_or(|age| age >= max) => return Err(Shortfall::MaxAge),
        Validity::For(_) => {}
    }
    let factors = mapping.factors(&c.amr, strengths);
    if (AuthEvent {
        at: Timestamp(at),
        factors,
        cap: None,
        unnamed: false,
    })
    .proves(r.aal, r.factors, strengths)
    {
        Ok(())
    } else {
        Err(Shortfall::Factor)
    }
}

/// A session built from token claims: one authentication event at `auth_time` with the `amr`
/// factors (read with the default [`ClaimMapping`]). Services check `acr` itself with
/// [`check_claims`], or [`check_claims_mapped`] with the mapping they configure.
#[must_use]
pub fn session_from_claims(c: &Claims) -> SessionState {
    session_from_claims_mapped(c, &ClaimMapping::default(), &StrengthTable::default())
}

/// A session built from token claims read with `mapping` under the tenant's `strengths`.
#[must_use]
pub fn session_from_claims_mapped(
    c: &Claims,
    mapping: &ClaimMapping,
    strengths: &StrengthTable,
) -> SessionState {
    let mut s = SessionState::default();
    if let Some(e) = mapping.event(c, strengths) {
        // A token is issued for an established sign-in.
        s.established = true;
        s.events.push(e);
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_default_mapping_reads_rfc_8176_conservatively() {
        let m = ClaimMapping::default();
        let t = StrengthTable::default();
        assert_eq!(
            m.factor("otp", &t),
            Some(Factor::Sms),
            "the weakest it could be"
        );
        assert_eq!(m.factor("hwk", &t), Some(Factor::Webauthn));
        assert_eq!(m.factor("swk", &t), Some(Factor::Push));
        assert_eq!(m.factor("pwd", &t), Some(Factor::Password));
        assert_eq!(m.factor("totp", &t), Some(Factor::Totp));
        assert_eq!(m.factor("mfa", &t), None);
        assert_eq!(m.factor("face", &t), None);
        // A tenant where SMS is worth less than email codes: `otp` follows its table.
        let mut strict = StrengthTable::default();
        strict.set(Factor::Sms, Aal::Aal1);
        assert_eq!(m.factor("otp", &strict), Some(Factor::Sms));
        let mut odd = StrengthTable::default();
        odd.set(Factor::Voice, Aal::Aal1);
        assert_eq!(m.factor("otp", &odd), Some(Factor::Voice));
        assert_eq!(m.aal("aal2"), Some(Aal::Aal2));
        assert_eq!(
            m.aal("http://idmanagement.gov/ns/assurance/aal/3"),
            Some(Aal::Aal3)
        );
        assert_eq!(m.aal("urn:unknown"), None);
        assert_eq!(m.acr_for(Aal::Aal2), "aal2");
        let m = m.acr_values("urn:1", "urn:2", "urn:3");
        assert_eq!(
            (m.acr_for(Aal::Aal3), m.aal("urn:2")),
            ("urn:3", Some(Aal::Aal2))
        );
        let e = m
            .event(
                &Claims {
                    acr: Some("urn:unknown".into()),
                    auth_time: Some(5),
                    amr: vec!["otp".into(), "hwk".into()],
                },
                &t,
            )
            .unwrap();
        assert_eq!(e.cap, Some(Aal::Aal1), "an unknown acr proves at most aal1");
        assert_eq!(
            e.factors,
            [Factor::Sms, Factor::Webauthn].into_iter().collect()
        );
    }
}
