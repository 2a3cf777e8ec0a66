//! What the engine answers: the decision, its audit records, its effects on state, and (on
//! request) the explanation.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stepup_core::{Aal, Factor, FactorSet, Requirement, Timestamp};

use crate::risk::RiskSummary;
use crate::state::{HistoryUpdate, SessionState};
use crate::tri::Tri;

/// Policy names, sorted, shared: a decision, its audit record and its challenge hold one list
/// (a policy's own one-name list when it is the only one). Read it as a slice of names. No
/// names is no list at all: an allow shares and counts nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Names(Option<Arc<[String]>>);

impl Names {
    /// No names.
    pub const EMPTY: Names = Names(None);

    /// The shared list, if there are names.
    #[must_use]
    pub fn shared(&self) -> Option<&Arc<[String]>> {
        self.0.as_ref()
    }
}

impl Deref for Names {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl From<Arc<[String]>> for Names {
    fn from(names: Arc<[String]>) -> Self {
        Names((!names.is_empty()).then_some(names))
    }
}

impl From<Vec<String>> for Names {
    fn from(names: Vec<String>) -> Self {
        Names((!names.is_empty()).then(|| names.into()))
    }
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(deserializer).map(Names::from)
    }
}

/// The hash of the policy set that decided, held in place: a decision and its records copy it,
/// so deciding shares nothing between threads. It is the set's hash text (32 hex digits; a
/// longer text is cut to its first 32 bytes, at a character's edge).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetHash {
    len: u8,
    bytes: [u8; SetHash::MAX],
}

impl SetHash {
    /// The longest hash held, in bytes.
    pub const MAX: usize = 32;

    /// The hash's bytes (its text's).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The hash as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let held = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(held).unwrap_or_default()
    }
}

impl From<&str> for SetHash {
    fn from(text: &str) -> Self {
        let mut end = text.len().min(SetHash::MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; SetHash::MAX];
        let src = text.as_bytes().get(..end).unwrap_or_default();
        if let Some(dst) = bytes.get_mut(..end) {
            dst.copy_from_slice(src);
        }
        SetHash {
            len: u8::try_from(end).unwrap_or(0),
            bytes,
        }
    }
}

impl Deref for SetHash {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for SetHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A challenge's id, held in place when it is short (every id the engine makes is `ch_` and 16
/// hex digits), shared when longer (an id read from a store written by hand or by another
/// program): a step-up gives it to its challenge, its decision and its record without an
/// allocation or a reference count. It reads, compares, hashes and serializes as its text.
#[derive(Clone)]
pub struct ChallengeId(IdText);

/// How a [`ChallengeId`] holds its text.
#[derive(Clone)]
enum IdText {
    /// Up to [`ChallengeId::INLINE`] bytes, in place.
    Inline(Held),
    /// A longer text, shared.
    Shared(Arc<str>),
}

/// A short text in place: its bytes, then zeros, with its length in the last byte. Aligned as
/// three words, which is how it is written and copied: a step-up copies its id into the
/// challenge and the record right after making it, and an id written a byte or a piece at a
/// time, then read a word at a time, waited on the processor's store buffer at every copy
/// (about a tenth of the decision's own time, sampled).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Held([u8; ChallengeId::INLINE + 1]);

impl Held {
    /// The text held.
    fn text(&self) -> &[u8] {
        let len = self.0.last().copied().unwrap_or(0);
        self.0.get(..usize::from(len)).unwrap_or_default()
    }
    /// The three words, the first bytes in the first word's low bytes (on any byte order).
    fn from_words(words: [u64; 3]) -> Held {
        let mut bytes = [0u8; ChallengeId::INLINE + 1];
        for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        Held(bytes)
    }
}

impl ChallengeId {
    /// The longest id held in place, in bytes.
    pub const INLINE: usize = 23;

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Held only from a whole text (`from`) or ASCII (`hex`): it always decodes.
            IdText::Inline(held) => std::str::from_utf8(held.text()).unwrap_or_default(),
            IdText::Shared(text) => text,
        }
    }

    /// `text` held in place, when it fits. `text` must be the bytes of a whole text.
    fn inline(text: &[u8]) -> Option<ChallengeId> {
        if text.len() > ChallengeId::INLINE {
            return None;
        }
        let mut bytes = [0; ChallengeId::INLINE + 1];
        let len = u8::try_from(text.len()).ok()?;
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        *bytes.last_mut()? = len;
        Some(ChallengeId(IdText::Inline(Held(bytes))))
    }

    /// The id `ch_` and the 16 hex digits `digits` (ASCII, most significant first, as two
    /// words of eight digits whose first digit is the word's highest byte), written as the three
    /// words it is held in.
    pub(crate) fn hex(digits: [u64; 2]) -> ChallengeId {
        const PREFIX: u64 = u64::from_le_bytes(*b"ch_\0\0\0\0\0");
        const LEN: u64 = 19 << 56;
        // The digits in text order: the first digit in the low byte.
        let (hi, lo) = (digits[0].swap_bytes(), digits[1].swap_bytes());
        ChallengeId(IdText::Inline(Held::from_words([
            PREFIX | hi << 24,
            hi >> 40 | lo << 24,
            lo >> 40 | LEN,
        ])))
    }
}

impl From<&str> for ChallengeId {
    fn from(text: &str) -> Self {
        ChallengeId::inline(text.as_bytes())
            .unwrap_or_else(|| ChallengeId(IdText::Shared(text.into())))
    }
}

impl From<String> for ChallengeId {
    fn from(text: String) -> Self {
        ChallengeId::from(text.as_str())
    }
}

impl Deref for ChallengeId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ChallengeId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChallengeId {}

impl std::hash::Hash for ChallengeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for ChallengeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChallengeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ChallengeId::from)
    }
}

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

/// A time as RFC 3339 text.
fn rfc3339<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

/// One audit record (a JSON line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// `auth.step_up_initiated|completed|failed|skipped|denied`.
    pub name: &'static str,
    /// When (serialized as RFC 3339 text, `2026-11-27T09:05:00Z`, as every time a person reads).
    #[serde(serialize_with = "rfc3339")]
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
    pub challenge_id: Option<ChallengeId>,
    /// Policies concerned, sorted.
    pub policies: Names,
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
    pub policy_set: SetHash,
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
    /// What the history learns, if anything (boxed: most decisions teach nothing, and a
    /// decision is moved whole).
    pub history: Option<Box<HistoryUpdate>>,
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
    pub fired: Names,
    /// Fired policies the session already satisfied, sorted.
    pub satisfied: Names,
    /// Why the decision is `deny`.
    pub deny: Option<DenyReason>,
    /// The message for the user.
    pub message: Option<Arc<str>>,
    /// The challenge issued or answered.
    pub challenge_id: Option<ChallengeId>,
    /// Highest AAL the session proved just before the event: given where a policy fired, on
    /// refusals and completions, and in explanations (replay's JSON always has it); an allow
    /// where no policy fired leaves it `None` (not computed on the fast path).
    pub session_aal: Option<Aal>,
    /// Risk breakdown (on audited decisions and explanations).
    pub risk: Option<RiskSummary>,
    /// Audit records, in order.
    pub audit: Vec<AuditRecord>,
    /// Why the engine failed closed, if it did.
    pub errors: Vec<String>,
    /// What to write.
    pub effects: Effects,
    /// The explanation, when asked for (boxed: a decision is moved whole, and most are not
    /// explained).
    pub trace: Option<Box<Trace>>,
    /// Hash of the policy set that decided.
    pub policy_set: SetHash,
    /// What each report-only policy in force would have done, sorted by name (empty when the
    /// scope has none). Never read by the decision itself.
    pub report_only: Vec<ReportOnly>,
}

impl Decision {
    /// A decision with nothing in it.
    #[must_use]
    pub fn new(kind: DecisionKind, policy_set: SetHash) -> Self {
        Decision {
            kind,
            required: None,
            eligible: FactorSet::EMPTY,
            fired: Names::EMPTY,
            satisfied: Names::EMPTY,
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
    /// Whether the request's action may proceed: an allow, and nothing else. A completed
    /// step-up authorises nothing by itself (an integrator's review: a completion sent with a
    /// payout read as "allowed" ran a payout never decided): decide the operation again, its
    /// retry, which the completion's grant or elevation then allows. An allow whose
    /// `effects` hold a session or history must be committed first (`Engine::process` does).
    #[must_use]
    pub fn allowed(&self) -> bool {
        self.kind == DecisionKind::Allow
    }

    /// Whether the decision went the user's way: an allow, or a completed step-up (what the
    /// session and history learn from, once committed).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        matches!(self.kind, DecisionKind::Allow | DecisionKind::Completed)
    }

    /// This decision, made with an explanation, as it must equal `plain`, the same request's
    /// decision made without one: the trace set aside, and the risk breakdown and session AAL
    /// (which an explanation always records) set aside where `plain` has none. The
    /// differential tests and fuzz target hold an explanation to it.
    #[must_use]
    pub fn without_explanation(mut self, plain: &Decision) -> Decision {
        self.trace = None;
        if plain.risk.is_none() {
            self.risk = None;
        }
        if plain.session_aal.is_none() {
            self.session_aal = None;
        }
        self
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

#[cfg(test)]
mod tests {
    use super::{ChallengeId, Names, SetHash};

    /// A set's hash is held whole up to 32 bytes, cut at a character's edge beyond, and reads,
    /// prints and serializes as its text.
    #[test]
    fn a_set_hash_is_its_text() {
        let hex = "0123456789abcdef0123456789abcdef";
        for text in ["", "h", hex] {
            let h = SetHash::from(text);
            assert_eq!((h.as_str(), h.to_string()), (text, text.to_string()));
            assert_eq!(
                serde_json::to_string(&h).ok(),
                serde_json::to_string(text).ok()
            );
        }
        assert_eq!(&*SetHash::from(format!("{hex}ff").as_str()), hex);
        // 31 ASCII bytes and a two-byte character: the character does not fit.
        let cut = format!("{}é", &hex[..31]);
        assert_eq!(&*SetHash::from(cut.as_str()), &hex[..31]);
        assert_ne!(SetHash::from("a"), SetHash::from("b"));
    }

    /// An id is its text, whether held in place (up to 23 bytes) or shared (longer): the two
    /// compare, hash and serialize alike, and what is read back is what was written.
    #[test]
    fn a_challenge_id_is_its_text() {
        use std::collections::HashSet;
        let long = "ch_0123456789abcdef0123456789abcdef";
        for text in [
            "",
            "c",
            "ch_0123456789abcdef",
            "0123456789abcdef012345",
            long,
            "é✓",
        ] {
            let id = ChallengeId::from(text);
            assert_eq!(
                (id.as_str(), &*id, id.to_string()),
                (text, text, text.to_string())
            );
            assert_eq!(format!("{id:?}"), format!("{text:?}"));
            let json = serde_json::to_string(&id).ok();
            assert_eq!(json, serde_json::to_string(text).ok());
            let back: Option<ChallengeId> = json.and_then(|j| serde_json::from_str(&j).ok());
            assert_eq!(back.as_ref(), Some(&id));
            assert_eq!(id.clone(), ChallengeId::from(text.to_string()));
        }
        // 23 bytes are held in place, 24 shared; ids that differ in their last byte differ.
        let at_edge = ChallengeId::from("0123456789abcdef0123456");
        let over = ChallengeId::from("0123456789abcdef01234567");
        assert!(matches!(&at_edge.0, super::IdText::Inline(h) if h.text().len() == 23));
        assert!(matches!(over.0, super::IdText::Shared(_)));
        assert_ne!(at_edge, ChallengeId::from("0123456789abcdef0123457"));
        assert_ne!(over, ChallengeId::from("0123456789abcdef01234568"));
        assert_ne!(ChallengeId::from(""), ChallengeId::from("\0"));
        // The engine's ids, made as words, are their text.
        let digits = |text: &[u8; 8]| u64::from_be_bytes(*text);
        assert_eq!(
            ChallengeId::hex([digits(b"0123abcd"), digits(b"ef456789")]),
            ChallengeId::from("ch_0123abcdef456789")
        );
        // A shared text equal to a held one (not made by `from`, which holds every short text)
        // is the same id, and hashes the same.
        let shared = ChallengeId(super::IdText::Shared("ch_1".into()));
        assert_eq!(shared, ChallengeId::from("ch_1"));
        let set: HashSet<ChallengeId> = [shared, ChallengeId::from("ch_1")].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    /// No names is no list; names read, compare and serialize as the list they are.
    #[test]
    fn names_are_their_list() {
        assert!(Names::from(Vec::new()).shared().is_none());
        assert_eq!(Names::from(Vec::new()), Names::EMPTY);
        let two = Names::from(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(*two, ["a", "b"]);
        assert_eq!(format!("{two:?}"), r#"["a", "b"]"#);
        let json = serde_json::to_string(&two).ok();
        assert_eq!(json.as_deref(), Some(r#"["a","b"]"#));
        let back: Option<Names> = json.and_then(|j| serde_json::from_str(&j).ok());
        assert_eq!(back, Some(two));
        assert_eq!(serde_json::from_str::<Names>("[]").ok(), Some(Names::EMPTY));
    }
}
