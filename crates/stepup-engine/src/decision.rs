//! What the engine answers: the decision, its audit records, its effects on state, and (on
//! request) the explanation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stepup_core::{Aal, Factor, FactorSet, Requirement, Timestamp};

use crate::risk::RiskSummary;
use crate::state::{HistoryUpdate, SessionState};
use crate::tri::Tri;

/// The kind of decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Proceed.
    Allow,
    /// Prove identity again first (a challenge was issued).
    StepUp,
    /// Refused: conflicting policies, no strong enough factor enrolled, or an evaluation error.
    Deny,
    /// A step-up completed its challenge.
    Completed,
    /// A step-up failed (wrong, ineligible or late factor, or no open challenge).
    Failed,
}

impl DecisionKind {
    /// The word used in outputs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::StepUp => "step_up",
            DecisionKind::Deny => "deny",
            DecisionKind::Completed => "completed",
            DecisionKind::Failed => "failed",
        }
    }
}

/// Why a decision is `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The fired policies allow no factor in common.
    Conflict,
    /// No enrolled factor is strong enough: the user must enrol one (HTTP 403
    /// `stronger_factor_required`).
    StrongerFactorRequired,
    /// The request could not be evaluated (unknown tenant, application, operation or resource).
    CannotEvaluate,
    /// The session's sign-in was never allowed (nor its step-up completed): every other event
    /// of the session is refused until it is (SPEC §10).
    SessionNotEstablished,
    /// The decision could not be committed (history store unavailable), so it does not allow.
    StoreUnavailable,
}

impl DenyReason {
    /// The reason as written in outputs (`conflict`, `stronger_factor_required`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::Conflict => "conflict",
            DenyReason::StrongerFactorRequired => "stronger_factor_required",
            DenyReason::CannotEvaluate => "cannot_evaluate",
            DenyReason::SessionNotEstablished => "session_not_established",
            DenyReason::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Names of audit records.
pub mod audit_names {
    /// The platform triggered a step-up.
    pub const INITIATED: &str = "auth.step_up_initiated";
    /// A step-up succeeded.
    pub const COMPLETED: &str = "auth.step_up_completed";
    /// A step-up failed or was answered late.
    pub const FAILED: &str = "auth.step_up_failed";
    /// Policies fired but the session already satisfied them.
    pub const SKIPPED: &str = "auth.step_up_skipped";
    /// The action was refused.
    pub const DENIED: &str = "auth.step_up_denied";
    /// A report-only policy would have prompted or refused (nothing was enforced).
    pub const REPORT_ONLY: &str = "auth.step_up_report_only";
}

/// What a report-only policy would have done, had it been enforced alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WouldBe {
    /// Its condition was false (or the event was not evaluated against policies: a step-up
    /// completion, or a refusal before evaluation).
    NotFired,
    /// It fired, and the session already satisfied it.
    Satisfied,
    /// It fired and would have prompted, with its requirement.
    StepUp,
    /// It fired and would have refused (no factor reaches it, or none is enrolled).
    Deny,
}

impl WouldBe {
    /// The word used in outputs (`not_fired`, `satisfied`, `step_up`, `deny`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            WouldBe::NotFired => "not_fired",
            WouldBe::Satisfied => "satisfied",
            WouldBe::StepUp => "step_up",
            WouldBe::Deny => "deny",
        }
    }
}

fn no_factors(f: &FactorSet) -> bool {
    f.is_empty()
}

/// One report-only policy's result in a decision: what it would have done, had it been enforced
/// on its own (it is never merged with the enforced policies, and changes nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOnly {
    /// The policy.
    pub policy: String,
    /// What it would have done.
    pub would_be: WouldBe,
    /// Its requirement (`step_up` and `deny`), with the factors that can reach its AAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Requirement>,
    /// The user's enrolled factors that would have satisfied it (`step_up`).
    #[serde(default, skip_serializing_if = "no_factors")]
    pub eligible: FactorSet,
    /// Why it would have refused (`deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<DenyReason>,
    /// Why it fired although its condition could not be decided (fail closed), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One audit record (a JSON line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// `auth.step_up_initiated|completed|failed|skipped|denied`.
    pub name: &'static str,
    /// When.
    pub at: Timestamp,
    /// Tenant.
    pub tenant: Arc<str>,
    /// Application.
    pub application: Arc<str>,
    /// User.
    pub user: Arc<str>,
    /// Session.
    pub session: Arc<str>,
    /// Event kind (`sign_in`, `operation:change_email`, ...).
    pub event: Arc<str>,
    /// Challenge, if any.
    pub challenge_id: Option<Arc<str>>,
    /// Policies concerned, sorted.
    pub policies: Arc<[String]>,
    /// Required AAL.
    pub required_aal: Option<Aal>,
    /// Factor used (completion and failure).
    pub factor: Option<Factor>,
    /// Risk score and signals.
    pub risk: Option<RiskSummary>,
    /// Message shown to the user.
    pub message: Option<Arc<str>>,
    /// Why the engine failed closed, if it did.
    pub errors: Vec<String>,
    /// Hash of the policy set that decided.
    pub policy_set: Arc<str>,
    /// On `auth.step_up_report_only` records: what the report-only policy would have done
    /// (`step_up` or `deny`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_be: Option<WouldBe>,
}

/// What to write after the decision (one atomic commit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// The session's new state, if it changed.
    pub session: Option<SessionState>,
    /// What the history learns, if anything.
    pub history: Option<HistoryUpdate>,
}

/// One predicate in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredicateTrace {
    /// The predicate, as in the policy language.
    pub predicate: String,
    /// Its value.
    pub value: Tri,
    /// Why it is unknown, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One policy in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyTrace {
    /// Name.
    pub name: String,
    /// `file:line`.
    pub origin: String,
    /// The condition's value (`unknown` fires: fail closed).
    pub condition: Tri,
    /// Whether it fired.
    pub fired: bool,
    /// Each predicate.
    pub predicates: Vec<PredicateTrace>,
    /// What it requires.
    pub requirement: String,
    /// Whether the session already satisfied it (fired policies only).
    pub satisfied: Option<bool>,
    /// Why (not) satisfied.
    pub why: Option<String>,
    /// Whether the policy is report-only (evaluated, never enforced).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub report_only: bool,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Trace {
    /// Every policy in force, fired or not.
    pub policies: Vec<PolicyTrace>,
    /// How the unsatisfied policies were merged.
    pub merge: Option<String>,
    /// Other notes (fail-closed reasons, challenge state).
    pub notes: Vec<String>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Allow, step up, deny, completed or failed.
    pub kind: DecisionKind,
    /// The merged requirement (step-up, deny, completion).
    pub required: Option<Requirement>,
    /// Factors that would satisfy the session, if enrolled.
    pub eligible: FactorSet,
    /// Policies that fired, sorted. (Shared: with the audit record and the challenge when it
    /// is the list they name, and with the policy when one fired.)
    pub fired: Arc<[String]>,
    /// Fired policies the session already satisfied, sorted.
    pub satisfied: Arc<[String]>,
    /// Why the decision is `deny`.
    pub deny: Option<DenyReason>,
    /// The message for the user.
    pub message: Option<Arc<str>>,
    /// The challenge issued or answered.
    pub challenge_id: Option<Arc<str>>,
    /// Highest AAL the session proved just before the event.
    pub session_aal: Option<Aal>,
    /// Risk breakdown (on audited decisions and explanations).
    pub risk: Option<RiskSummary>,
    /// Audit records, in order.
    pub audit: Vec<AuditRecord>,
    /// Why the engine failed closed, if it did.
    pub errors: Vec<String>,
    /// What to write.
    pub effects: Effects,
    /// The explanation, when asked for.
    pub trace: Option<Trace>,
    /// Hash of the policy set that decided.
    pub policy_set: Arc<str>,
    /// What each report-only policy in force would have done, sorted by name (empty when the
    /// scope has none). Never read by the decision itself.
    pub report_only: Vec<ReportOnly>,
}

impl Decision {
    /// A decision with nothing in it.
    #[must_use]
    pub fn new(kind: DecisionKind, policy_set: Arc<str>) -> Self {
        Decision {
            kind,
            required: None,
            eligible: FactorSet::EMPTY,
            fired: Arc::default(),
            satisfied: Arc::default(),
            deny: None,
            message: None,
            challenge_id: None,
            session_aal: None,
            risk: None,
            audit: Vec::new(),
            errors: Vec::new(),
            effects: Effects::default(),
            trace: None,
            policy_set,
            report_only: Vec::new(),
        }
    }
    /// Whether the action may proceed.
    #[must_use]
    pub fn allowed(&self) -> bool {
        matches!(self.kind, DecisionKind::Allow | DecisionKind::Completed)
    }
}

/// A factor's name as users read it.
#[must_use]
pub fn factor_label(f: Factor) -> &'static str {
    match f {
        Factor::Password => "a password",
        Factor::EmailOtp => "email codes",
        Factor::Sms => "SMS",
        Factor::Voice => "voice calls",
        Factor::Push => "push approval",
        Factor::Totp => "TOTP",
        Factor::Webauthn => "WebAuthn",
    }
}

/// "WebAuthn or TOTP": strongest first, as users read them.
#[must_use]
pub fn factors_label(set: FactorSet) -> String {
    let mut v: Vec<&str> = set.iter().map(factor_label).collect();
    v.reverse();
    match v.len() {
        0 => "a factor".to_string(),
        1 => v.remove(0).to_string(),
        _ => {
            let last = v.pop().unwrap_or("");
            format!("{} or {last}", v.join(", "))
        }
    }
}
