//! Scenario files: RON, one story each — a tenant, an application, users with enrolled factors
//! and starting history, and a timeline of events, each optionally with expectations.

use std::collections::BTreeMap;

use serde::Deserialize;
use stepup_core::{Aal, Factor, Timestamp};
use stepup_engine::{Context, Location, Value};

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the story is.
    pub name: String,
    /// Tenant.
    pub tenant: String,
    /// Application (empty: the tenant's own policies).
    #[serde(default)]
    pub application: String,
    /// The user (single-user stories).
    #[serde(default)]
    pub user: Option<UserSpec>,
    /// More users (multi-user stories); events name theirs with `user:`.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// The timeline.
    pub events: Vec<EventSpec>,
}

/// A user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Id.
    pub id: String,
    /// Enrolled factors.
    pub enrolled: Vec<Factor>,
    /// History before the story starts.
    #[serde(default)]
    pub history: HistorySpec,
}

/// Starting history.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    /// Known devices.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Countries and when last seen (RFC 3339).
    #[serde(default, deserialize_with = "unique")]
    pub countries: BTreeMap<String, String>,
    /// The last successful sign-in.
    #[serde(default)]
    pub last_sign_in: Option<LastSpec>,
    /// Resource classes and when last accessed.
    #[serde(default, deserialize_with = "unique")]
    pub accesses: BTreeMap<String, String>,
}

/// The last sign-in in a starting history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastSpec {
    /// When (RFC 3339).
    pub at: String,
    /// Country.
    #[serde(default)]
    pub country: Option<String>,
    /// Where.
    #[serde(default)]
    pub location: Option<Location>,
}

/// What an event should produce.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow`, `step_up`, `deny`, `completed` or `failed`.
    #[serde(default)]
    pub decision: Option<ExpectedDecision>,
    /// Required AAL (`None`: no requirement).
    #[serde(default, deserialize_with = "written")]
    pub required_aal: Option<Option<Aal>>,
    /// Eligible factors (also written `eligible_factors`, as the JSON output names them).
    #[serde(default, alias = "eligible_factors")]
    pub eligible: Option<Vec<Factor>>,
    /// The factors the requirement allows, before enrolment (`[]`: no requirement).
    #[serde(default)]
    pub allowed_factors: Option<Vec<Factor>>,
    /// The requirement's max age in seconds (`0`: `every time`; `None`: no requirement).
    #[serde(default, deserialize_with = "written")]
    pub max_age_s: Option<Option<u64>>,
    /// The highest AAL the session proves just before the event (`None`: none).
    #[serde(default, deserialize_with = "written")]
    pub session_aal: Option<Option<Aal>>,
    /// The risk score (`unknown` where a signal is unknown and the score is a range; `None`:
    /// no risk breakdown).
    #[serde(default, alias = "risk", deserialize_with = "written")]
    pub risk_score: Option<Option<ExpectedScore>>,
    /// Fired policies (any order; also written `policies`, as the JSON output names them).
    #[serde(default, alias = "policies")]
    pub fired: Option<Vec<String>>,
    /// Audit record names, in order.
    #[serde(default)]
    pub audit: Option<Vec<String>>,
    /// The user-facing message.
    #[serde(default)]
    pub message: Option<String>,
    /// Why the decision is `deny`, as the engine names it in JSON (`conflict`,
    /// `stronger_factor_required`, `session_not_established`, `cannot_evaluate`, ...), or `none`
    /// for a decision that is not a deny. Compared with the engine's reason serialised, so reasons
    /// the engine adds need no change here.
    #[serde(default)]
    pub deny_reason: Option<String>,
    /// Which challenge the event issued or answered, without writing its id: `issued_by(N)` (the
    /// challenge issued by event `N`, 0-based; a `step_up` decision names its own index) or
    /// `none`.
    #[serde(default)]
    pub challenge: Option<ExpectedChallenge>,
    /// Risk signals' values in the decision's breakdown (`true`, `false` or `unknown`), by signal
    /// name; signals not named are not checked.
    #[serde(default, deserialize_with = "unique_opt")]
    pub signals: Option<BTreeMap<String, String>>,
    /// What report-only policies would have done, by policy name: `"not_fired"`,
    /// `"satisfied"`, `"step_up"` or `"deny"`, optionally followed by the AAL of a step-up
    /// (`"step_up aal2"`) or the reason of a denial (`"deny stronger_factor_required"`);
    /// policies not named are not checked.
    #[serde(default, deserialize_with = "unique_opt")]
    pub report_only: Option<BTreeMap<String, String>>,
}

/// An expectation's field as written: a written `None` is `Some(None)`, which expects none (read
/// as "not checked", `expect: (max_age_s: None)` passed while checking nothing).
fn written<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A risk score in an expectation: a number, or `unknown` (a range).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ExpectedScore {
    /// Known exactly.
    Known(u32),
    /// `unknown`.
    Word(UnknownWord),
}

/// The word `unknown`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownWord {
    /// `unknown`.
    Unknown,
}

impl std::fmt::Display for ExpectedScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedScore::Known(n) => write!(f, "{n}"),
            ExpectedScore::Word(UnknownWord::Unknown) => f.write_str("unknown"),
        }
    }
}

/// The challenge an event issued or answered, in an expectation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedChallenge {
    /// The challenge issued by the event of this 0-based index.
    IssuedBy(usize),
    /// No challenge at all.
    #[serde(rename = "none")]
    NoChallenge,
}

impl std::fmt::Display for ExpectedChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedChallenge::IssuedBy(i) => write!(f, "issued_by({i})"),
            ExpectedChallenge::NoChallenge => f.write_str("none"),
        }
    }
}

/// A decision in an expectation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedDecision {
    /// Allow.
    Allow,
    /// Step up.
    StepUp,
    /// Deny.
    Deny,
    /// Completed.
    Completed,
    /// Failed.
    Failed,
}

impl Expect {
    /// How many things it checks: one per field given, one per signal and per report-only
    /// policy named. `expect: ()` checks nothing.
    #[must_use]
    pub fn checks(&self) -> usize {
        let given = [
            self.decision.is_some(),
            self.required_aal.is_some(),
            self.eligible.is_some(),
            self.allowed_factors.is_some(),
            self.max_age_s.is_some(),
            self.session_aal.is_some(),
            self.risk_score.is_some(),
            self.fired.is_some(),
            self.audit.is_some(),
            self.message.is_some(),
            self.deny_reason.is_some(),
            self.challenge.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        given
            + self.signals.as_ref().map_or(0, BTreeMap::len)
            + self.report_only.as_ref().map_or(0, BTreeMap::len)
    }
}

impl ExpectedDecision {
    /// As written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedDecision::Allow => "allow",
            ExpectedDecision::StepUp => "step_up",
            ExpectedDecision::Deny => "deny",
            ExpectedDecision::Completed => "completed",
            ExpectedDecision::Failed => "failed",
        }
    }
}

fn password() -> Vec<Factor> {
    vec![Factor::Password]
}

fn yes() -> bool {
    true
}

/// An event as written. `at` is RFC 3339 or relative to the previous event (`"+5m"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EventSpec {
    /// A sign-in.
    SignIn {
        /// When.
        at: String,
        /// Whose (multi-user stories).
        #[serde(default)]
        user: Option<String>,
        /// The application (default: the scenario's).
        #[serde(default)]
        application: Option<String>,
        /// Device fingerprint.
        #[serde(default)]
        device: Option<String>,
        /// IP address.
        #[serde(default)]
        ip: Option<String>,
        /// Country.
        #[serde(default)]
        country: Option<String>,
        /// Geolocation.
        #[serde(default)]
        location: Option<Location>,
        /// Factors used (default `[password]`).
        #[serde(default = "password")]
        factors: Vec<Factor>,
        /// Platform-supplied risk score.
        #[serde(default)]
        risk: Option<u32>,
        /// Expectations.
        #[serde(default)]
        expect: Option<Expect>,
    },
    /// An operation.
    Operation {
        /// When.
        at: String,
        /// Whose.
        #[serde(default)]
        user: Option<String>,
        /// The application (default: the scenario's).
        #[serde(default)]
        application: Option<String>,
        /// Operation name.
        name: String,
        /// Attributes.
        #[serde(default, deserialize_with = "unique")]
        attrs: BTreeMap<String, Value>,
        /// Device fingerprint (with any of the context fields, the event carries its own
        /// context and its risk signals are computed, SPEC §5).
        #[serde(default)]
        device: Option<String>,
        /// IP address.
        #[serde(default)]
        ip: Option<String>,
        /// Country.
        #[serde(default)]
        country: Option<String>,
        /// Geolocation.
        #[serde(default)]
        location: Option<Location>,
        /// Platform-supplied risk score.
        #[serde(default)]
        risk: Option<u32>,
        /// Expectations.
        #[serde(default)]
        expect: Option<Expect>,
    },
    /// Opening a resource class.
    Access {
        /// When.
        at: String,
        /// Whose.
        #[serde(default)]
        user: Option<String>,
        /// The application (default: the scenario's).
        #[serde(default)]
        application: Option<String>,
        /// Resource class.
        resource: String,
        /// Device fingerprint (with any of the context fields, the event carries its own
        /// context and its risk signals are computed, SPEC §5).
        #[serde(default)]
        device: Option<String>,
        /// IP address.
        #[serde(default)]
        ip: Option<String>,
        /// Country.
        #[serde(default)]
        country: Option<String>,
        /// Geolocation.
        #[serde(default)]
        location: Option<Location>,
        /// Platform-supplied risk score.
        #[serde(default)]
        risk: Option<u32>,
        /// Expectations.
        #[serde(default)]
        expect: Option<Expect>,
    },
    /// Answering the latest challenge.
    StepUp {
        /// When.
        at: String,
        /// Whose.
        #[serde(default)]
        user: Option<String>,
        /// The application (default: the scenario's).
        #[serde(default)]
        application: Option<String>,
        /// Factor used.
        factor: Factor,
        /// Whether it verified (default true).
        #[serde(default = "yes")]
        success: bool,
        /// Expectations.
        #[serde(default)]
        expect: Option<Expect>,
    },
}

impl EventSpec {
    /// The `at` text.
    #[must_use]
    pub fn at(&self) -> &str {
        match self {
            EventSpec::SignIn { at, .. }
            | EventSpec::Operation { at, .. }
            | EventSpec::Access { at, .. }
            | EventSpec::StepUp { at, .. } => at,
        }
    }
    /// The user named, if any.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        match self {
            EventSpec::SignIn { user, .. }
            | EventSpec::Operation { user, .. }
            | EventSpec::Access { user, .. }
            | EventSpec::StepUp { user, .. } => user.as_deref(),
        }
    }
    /// The application named, if any.
    #[must_use]
    pub fn application(&self) -> Option<&str> {
        match self {
            EventSpec::SignIn { application, .. }
            | EventSpec::Operation { application, .. }
            | EventSpec::Access { application, .. }
            | EventSpec::StepUp { application, .. } => application.as_deref(),
        }
    }
    /// The request context an operation or access carries: `None` unless it names any of
    /// `device`, `ip`, `country`, `location` or `risk` (sign-ins always carry theirs).
    #[must_use]
    pub fn own_context(&self) -> Option<Context> {
        match self {
            EventSpec::Operation {
                device,
                ip,
                country,
                location,
                risk,
                ..
            }
            | EventSpec::Access {
                device,
                ip,
                country,
                location,
                risk,
                ..
            } => (device.is_some()
                || ip.is_some()
                || country.is_some()
                || location.is_some()
                || risk.is_some())
            .then(|| Context {
                device: device.clone(),
                ip: ip.clone(),
                country: country.clone(),
                location: *location,
                platform_risk: *risk,
            }),
            EventSpec::SignIn { .. } | EventSpec::StepUp { .. } => None,
        }
    }
    /// The expectations.
    #[must_use]
    pub fn expect(&self) -> Option<&Expect> {
        match self {
            EventSpec::SignIn { expect, .. }
            | EventSpec::Operation { expect, .. }
            | EventSpec::Access { expect, .. }
            | EventSpec::StepUp { expect, .. } => expect.as_ref(),
        }
    }
}

/// Parses `+5m`, `+30s`, `+2h`, `+1d` (relative) or an RFC 3339 time.
///
/// # Errors
/// What is wrong with the text.
pub fn resolve_time(text: &str, previous: Option<Timestamp>) -> Result<Timestamp, String> {
    if let Some(rel) = text.strip_prefix('+') {
        let prev = previous.ok_or_else(|| {
            format!("`{text}` is relative, but it is the first event: give an absolute time")
        })?;
        // The unit is the last character (split at a character boundary: `+ώ` is an error,
        // not a panic).
        let cut = rel.char_indices().last().map_or(0, |(i, _)| i);
        let (n, unit) = rel.split_at(cut);
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "`{text}` is not a relative time; write e.g. `+5m`, `+30s`, `+2h` or `+1d`"
                ));
            }
        };
        let n: i64 = n
            .parse()
            .map_err(|_| format!("`{text}` is not a relative time; write e.g. `+5m`"))?;
        return Ok(prev.plus(n.saturating_mul(mult)));
    }
    Timestamp::parse_rfc3339(text)
}

/// A map whose keys are each named once: a name written twice is an error of the file, never
/// a value silently replaced by the later one (an expectation dropped, or an attribute the
/// scenario does not mean).
struct UniqueMap<V>(BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map whose keys are each named once")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!(
                            "`{k}` is named twice in one map: name each key once"
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A map field whose keys are each named once ([`UniqueMap`]).
fn unique<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    UniqueMap::deserialize(deserializer).map(|m| m.0)
}

/// An optional map field whose keys are each named once ([`UniqueMap`]).
fn unique_opt<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, V>>, D::Error> {
    Option::<UniqueMap<V>>::deserialize(deserializer).map(|m| m.map(|m| m.0))
}
