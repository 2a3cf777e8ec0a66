//! One line of a decision log: a request, the state it was decided on, and the decision.
//!
//! The history in a record is only what the decision can read, whatever the rules: the event's
//! device among the user's devices, the event's country with when it was last seen, the last
//! sign-in (the impossible-travel reference) and the accessed resource class with its last
//! access. The session keeps its authentication events, grants, counters and its open
//! challenges (a step-up completes the latest open one); closed challenges decide nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepup_core::{Factor, FactorSet, Requirement, Timestamp};
use stepup_engine::decision::DenyReason;
use stepup_engine::state::{ChallengeState, SessionState};
use stepup_engine::{
    Context, Decision, DecisionKind, Event, ReportOnly, Request, State, UserHistory, Value,
};

use crate::pseudo::{Kind, Pseudonymizer};

/// The version of the format this crate writes and reads (`"v"` of every line).
pub const FORMAT_VERSION: u32 = 1;

/// One decision, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// When, as RFC 3339 (for readers; `now` is what counts).
    pub at: String,
    /// When, in seconds since the Unix epoch: the clock the decision was made with.
    pub now: Timestamp,
    /// Tenant.
    pub tenant: String,
    /// Application (`""`: the tenant's own policies).
    pub application: String,
    /// User id, or its pseudonym (`u_…`).
    pub user: String,
    /// Session id, or its pseudonym (`s_…`).
    pub session: String,
    /// Whether user, session and device identifiers are pseudonyms (keyed hashes).
    #[serde(default)]
    pub pseudonymised: bool,
    /// The user's enrolled factors.
    pub enrolled: FactorSet,
    /// The event.
    pub event: LogEvent,
    /// The state the decision was made on; `null` when the store could not be read (the
    /// decision was then a refusal that no rules change).
    pub state: Option<LogState>,
    /// The decision.
    pub decision: LoggedDecision,
    /// Hash of the policy set that decided.
    pub policy_set: String,
}

/// The event of a logged decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogEvent {
    /// A sign-in.
    SignIn {
        /// Where from.
        context: Context,
        /// The factors used.
        factors: FactorSet,
    },
    /// An operation.
    Operation {
        /// Its name.
        name: String,
        /// Its attributes (a name given twice is left out: the engine reads it as unknown,
        /// as it reads an absent one).
        #[serde(default)]
        attrs: BTreeMap<String, LogValue>,
        /// The context it carried, if any.
        #[serde(default)]
        context: Option<Context>,
    },
    /// An access to a resource class.
    Access {
        /// The resource class.
        resource: String,
        /// The context it carried, if any.
        #[serde(default)]
        context: Option<Context>,
    },
    /// An answer to the latest open challenge.
    StepUp {
        /// The factor used.
        factor: Factor,
        /// Whether it verified.
        success: bool,
    },
}

/// An attribute's value as logged: a boolean, a number or a string as the request gave it, and
/// a number JSON cannot write (NaN, an infinity) as `{"non_finite": "inf"}` (or `"-inf"`,
/// `"nan"`), read back as that number. Written as text, it was read back as a string, and a
/// backtest of unchanged rules read a test of a string attribute as answered where the live
/// decision had read a mistyped value as unknown (SPEC §10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogValue {
    /// A value JSON can write.
    Value(Value),
    /// A number JSON cannot write.
    NonFinite {
        /// Which.
        non_finite: NonFinite,
    },
}

/// A number JSON cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NonFinite {
    /// Positive infinity.
    #[serde(rename = "inf")]
    Infinity,
    /// Negative infinity.
    #[serde(rename = "-inf")]
    NegInfinity,
    /// Not a number.
    #[serde(rename = "nan")]
    NaN,
}

impl LogValue {
    /// The value as logged.
    #[must_use]
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Number(x) if x.is_nan() => LogValue::NonFinite {
                non_finite: NonFinite::NaN,
            },
            Value::Number(x) if x.is_infinite() => LogValue::NonFinite {
                non_finite: if *x > 0.0 {
                    NonFinite::Infinity
                } else {
                    NonFinite::NegInfinity
                },
            },
            other => LogValue::Value(other.clone()),
        }
    }

    /// The value the request carried.
    #[must_use]
    pub fn value(&self) -> Value {
        match self {
            LogValue::Value(v) => v.clone(),
            LogValue::NonFinite { non_finite } => Value::Number(match non_finite {
                NonFinite::Infinity => f64::INFINITY,
                NonFinite::NegInfinity => f64::NEG_INFINITY,
                NonFinite::NaN => f64::NAN,
            }),
        }
    }
}

/// The state a logged decision was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogState {
    /// What the decision can read of the user's history; `null` when the store could not
    /// provide it (the signals that need it were unknown).
    pub history: Option<UserHistory>,
    /// Why the history was missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_error: Option<String>,
    /// The session: authentication events, grants, open challenges.
    pub session: SessionState,
}

/// The decision as logged: everything a backtest compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedDecision {
    /// `allow`, `step_up`, `deny`, `completed` or `failed`.
    pub kind: DecisionKind,
    /// The merged requirement.
    pub required: Option<Requirement>,
    /// Enrolled factors that satisfy it.
    pub eligible: FactorSet,
    /// Enforced policies that fired, sorted.
    pub fired: Vec<String>,
    /// Those the session already satisfied, sorted.
    pub satisfied: Vec<String>,
    /// Why it is a `deny`.
    pub deny_reason: Option<DenyReason>,
    /// The user-facing message.
    pub message: Option<String>,
    /// The challenge issued or answered.
    pub challenge_id: Option<String>,
    /// What each report-only policy would have done.
    #[serde(default)]
    pub report_only: Vec<ReportOnly>,
    /// Why the engine failed closed, if it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl LoggedDecision {
    /// The loggable part of a decision.
    #[must_use]
    pub fn of(d: &Decision) -> Self {
        LoggedDecision {
            kind: d.kind,
            required: d.required,
            eligible: d.eligible,
            fired: d.fired.to_vec(),
            satisfied: d.satisfied.to_vec(),
            deny_reason: d.deny,
            message: d.message.as_deref().map(str::to_string),
            challenge_id: d.challenge_id.as_deref().map(str::to_string),
            report_only: d.report_only.clone(),
            errors: d.errors.clone(),
        }
    }

    /// The enforced policies that decided: fired and not satisfied (those a `step_up`
    /// prompts for or a `deny` refuses for), sorted.
    pub fn deciding(&self) -> impl Iterator<Item = &String> {
        self.fired.iter().filter(|p| !self.satisfied.contains(p))
    }

    /// The outcome in a word or two: `allow`, `step_up aal2`, `deny conflict`, `completed`.
    #[must_use]
    pub fn label(&self) -> String {
        match (self.kind, self.required, self.deny_reason) {
            (DecisionKind::StepUp, Some(r), _) => format!("step_up {}", r.aal),
            (DecisionKind::Deny, _, Some(reason)) => format!("deny {}", reason.as_str()),
            (k, _, _) => k.as_str().to_string(),
        }
    }

    /// The outcome with its whole requirement: `step_up aal2 factor any for 15m`, `deny conflict
    /// requiring aal3 factor webauthn for 5m`, `allow`.
    #[must_use]
    pub fn full_label(&self) -> String {
        match (self.kind, self.required) {
            (DecisionKind::StepUp, Some(r)) => {
                format!("step_up {} factor {} {}", r.aal, r.factors, r.validity)
            }
            (_, Some(r)) => format!(
                "{} requiring {} factor {} {}",
                self.label(),
                r.aal,
                r.factors,
                r.validity
            ),
            _ => self.label(),
        }
    }

    /// Whether a user would see the same thing: same kind, requirement and deny reason.
    #[must_use]
    pub fn same_outcome(&self, o: &LoggedDecision) -> bool {
        self.kind == o.kind && self.required == o.required && self.deny_reason == o.deny_reason
    }
}

/// Whether a store failure made the decision: a refusal for `store_unavailable` (it depends on
/// no rule: a backtest keeps it). A decision of another kind naming that reason is not one.
#[must_use]
pub fn store_failure(d: &LoggedDecision) -> bool {
    d.kind == DecisionKind::Deny && d.deny_reason == Some(DenyReason::StoreUnavailable)
}

/// The latest `now` a record may have: the last second of year 9999.
pub const MAX_NOW: i64 = 253_402_300_799;

/// The longest policy-set hash a record may name, in bytes (the loader's is 32 hex digits).
pub const MAX_POLICY_SET_BYTES: usize = 64;

fn log_event(e: &Event) -> LogEvent {
    match e {
        Event::SignIn { context, factors } => LogEvent::SignIn {
            context: context.clone(),
            factors: *factors,
        },
        Event::Operation {
            name,
            attrs,
            context,
        } => {
            // A name given twice has no one value: the engine reads it as unknown, and the
            // log leaves it out, so that deciding again reads it unknown too (absent), not
            // as its first value (a review of the engine's change).
            let mut map = BTreeMap::new();
            let mut twice = std::collections::BTreeSet::new();
            for (k, v) in attrs {
                if map.insert(k.clone(), LogValue::of(v)).is_some() {
                    twice.insert(k.clone());
                }
            }
            for k in &twice {
                map.remove(k);
            }
            LogEvent::Operation {
                name: name.clone(),
                attrs: map,
                context: context.clone(),
            }
        }
        Event::Access { resource, context } => LogEvent::Access {
            resource: resource.clone(),
            context: context.clone(),
        },
        Event::StepUp { factor, success } => LogEvent::StepUp {
            factor: *factor,
            success: *success,
        },
    }
}

/// What a decision on `event` can read of `h` (see the module's documentation).
#[must_use]
pub fn history_read(h: &UserHistory, event: &Event) -> UserHistory {
    let mut out = UserHistory::default();
    if let Some(ctx) = event.context() {
        // As the engine reads them: a blank device or country names none.
        if let Some(d) = ctx.device_id()
            && h.devices.contains(d)
        {
            out.devices.insert(d.to_string());
        }
        if let Some(c) = ctx.country_code()
            && let Some((code, at)) = h.country_seen(c)
        {
            out.countries.insert(code.clone(), *at);
        }
        out.last_sign_in.clone_from(&h.last_sign_in);
    }
    if let Event::Access { resource, .. } = event
        && let Some(at) = h.accesses.get(resource)
    {
        out.accesses.insert(resource.clone(), *at);
    }
    out
}

/// The part of a session a decision reads: every challenge but the open ones is left out.
#[must_use]
pub fn session_read(s: &SessionState) -> SessionState {
    SessionState {
        challenges: s
            .challenges
            .iter()
            .filter(|c| c.state == ChallengeState::Open)
            .cloned()
            .collect(),
        ..s.clone()
    }
}

impl Record {
    /// The record of a decision `d` made on `req` against `state` (`None`: the store could not
    /// be read), with identifiers pseudonymised when `pseudo` is given.
    #[must_use]
    pub fn new(
        req: &Request,
        state: Option<&State>,
        d: &Decision,
        pseudo: Option<&Pseudonymizer>,
    ) -> Self {
        let mut r = Record {
            v: FORMAT_VERSION,
            at: req.now.to_rfc3339(),
            now: req.now,
            tenant: req.tenant.to_string(),
            application: req.application.to_string(),
            user: req.user.to_string(),
            session: req.session.to_string(),
            pseudonymised: false,
            enrolled: req.enrolled,
            event: log_event(&req.event),
            state: state.map(|s| LogState {
                history: s.history.as_ref().ok().map(|h| history_read(h, &req.event)),
                history_error: s.history.as_ref().err().cloned(),
                session: session_read(&s.session),
            }),
            decision: LoggedDecision::of(d),
            policy_set: d.policy_set.to_string(),
        };
        if let Some(p) = pseudo {
            r.pseudonymise(p);
        }
        r
    }

    /// Replaces user, session and device identifiers by their pseudonyms.
    pub fn pseudonymise(&mut self, p: &Pseudonymizer) {
        if self.pseudonymised {
            return;
        }
        self.pseudonymised = true;
        self.user = p.pseudonym(Kind::User, &self.user);
        self.session = p.pseudonym(Kind::Session, &self.session);
        // A device as the engine reads it (`Context::device_id`): named, without surrounding
        // spaces; a blank one stays blank (a pseudonym would name a device where the event
        // named none, and a backtest read it as known or new).
        let device = |d: &mut Option<String>| {
            if let Some(x) = d {
                let named = x.trim();
                if !named.is_empty() {
                    *x = p.pseudonym(Kind::Device, named);
                }
            }
        };
        match &mut self.event {
            LogEvent::SignIn { context, .. } => device(&mut context.device),
            LogEvent::Operation { context, .. } | LogEvent::Access { context, .. } => {
                if let Some(c) = context {
                    device(&mut c.device);
                }
            }
            LogEvent::StepUp { .. } => {}
        }
        if let Some(s) = &mut self.state {
            if let Some(h) = &mut s.history {
                h.devices = h
                    .devices
                    .iter()
                    .map(|d| p.pseudonym(Kind::Device, d))
                    .collect();
            }
            for c in &mut s.session.challenges {
                if let Some(h) = &mut c.pending_history {
                    device(&mut h.device);
                }
                c.id = p.pseudonym(Kind::Challenge, &c.id).into();
            }
            for g in &mut s.session.grants {
                g.challenge_id = p.pseudonym(Kind::Challenge, &g.challenge_id).into();
            }
        }
        if let Some(id) = &mut self.decision.challenge_id {
            *id = p.pseudonym(Kind::Challenge, id);
        }
    }

    /// The request, as the engine is asked it again.
    #[must_use]
    pub fn request(&self) -> Request {
        let event = match &self.event {
            LogEvent::SignIn { context, factors } => Event::SignIn {
                context: context.clone(),
                factors: *factors,
            },
            LogEvent::Operation {
                name,
                attrs,
                context,
            } => Event::Operation {
                name: name.clone(),
                attrs: attrs.iter().map(|(k, v)| (k.clone(), v.value())).collect(),
                context: context.clone(),
            },
            LogEvent::Access { resource, context } => Event::Access {
                resource: resource.clone(),
                context: context.clone(),
            },
            LogEvent::StepUp { factor, success } => Event::StepUp {
                factor: *factor,
                success: *success,
            },
        };
        Request {
            tenant: self.tenant.as_str().into(),
            application: self.application.as_str().into(),
            user: self.user.as_str().into(),
            enrolled: self.enrolled,
            session: self.session.as_str().into(),
            event,
            now: self.now,
        }
    }

    /// The state, as the engine is given it again; `None` when the store could not be read.
    #[must_use]
    pub fn state(&self) -> Option<State> {
        self.state.as_ref().map(|s| State {
            history: match &s.history {
                Some(h) => Ok(h.clone()),
                None => Err(s
                    .history_error
                    .clone()
                    .unwrap_or_else(|| "history unavailable".to_string())),
            },
            session: s.session.clone(),
        })
    }

    /// Why the record cannot be decided again, if it cannot: its time is before 1970 or after
    /// year 9999, its policy-set hash is longer than [`MAX_POLICY_SET_BYTES`], it names a store
    /// failure on a decision that is not a refusal, or it holds no state although its decision
    /// is not a store failure's refusal (only a decision made without a state may be logged
    /// without one: any other would be kept as recorded, whatever the rules, and hide a change).
    ///
    /// # Errors
    /// What is wrong with the record.
    pub fn check(&self) -> Result<(), String> {
        if !(0..=MAX_NOW).contains(&self.now.0) {
            return Err(format!(
                "`now` is {}: a decision's time is between 0 (1970) and {MAX_NOW} (year 9999)",
                self.now.0
            ));
        }
        if self.policy_set.len() > MAX_POLICY_SET_BYTES {
            return Err(format!(
                "`policy_set` has {} bytes: a policy set's hash has at most {MAX_POLICY_SET_BYTES}",
                self.policy_set.len()
            ));
        }
        let d = &self.decision;
        if d.deny_reason == Some(DenyReason::StoreUnavailable) && d.kind != DecisionKind::Deny {
            return Err(format!(
                "a `{}` decision cannot have the deny reason `store_unavailable`",
                d.kind.as_str()
            ));
        }
        if self.state.is_none() && !store_failure(d) {
            return Err(format!(
                "no state is logged for a `{}` decision: only a refusal for \
                 `store_unavailable` is logged without the state it was decided on, so this \
                 one cannot be decided again",
                d.label()
            ));
        }
        Ok(())
    }

    /// The event as outputs name it (`sign_in`, `operation:payout`, `access:payments`).
    #[must_use]
    pub fn event_key(&self) -> String {
        match &self.event {
            LogEvent::SignIn { .. } => "sign_in".to_string(),
            LogEvent::Operation { name, .. } => format!("operation:{name}"),
            LogEvent::Access { resource, .. } => format!("access:{resource}"),
            LogEvent::StepUp { .. } => "step_up".to_string(),
        }
    }

    /// One JSON line (no newline).
    ///
    /// # Errors
    /// When serialisation fails (it does not for records built by [`Record::new`]).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
