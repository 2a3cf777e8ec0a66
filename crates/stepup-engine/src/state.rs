//! What the engine remembers: a user's history (for the risk signals) and a session's
//! authentication events, challenges and `every time` grants.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stepup_core::{Aal, FactorSet, Requirement, StrengthTable, Timestamp};

use crate::decision::{ChallengeId, Names};
use crate::request::{Location, Value};

/// The last successful sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastSignIn {
    /// When.
    pub at: Timestamp,
    /// From which country.
    pub country: Option<String>,
    /// From where.
    pub location: Option<Location>,
}

/// A user's history, per tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserHistory {
    /// Device fingerprints of successful sign-ins.
    pub devices: BTreeSet<String>,
    /// Countries of successful sign-ins, with the last time seen.
    pub countries: BTreeMap<String, Timestamp>,
    /// The last successful sign-in.
    pub last_sign_in: Option<LastSignIn>,
    /// Last access to each resource class.
    pub accesses: BTreeMap<String, Timestamp>,
}

/// The most devices a history remembers. Beyond, one is forgotten (the first by name) for
/// each new one: a forgotten device is new again, so a limit only makes the signals more
/// cautious, and keeps the history each decision reads and writes small (every new login may
/// teach a device, and its fingerprint comes from the client).
pub const MAX_DEVICES: usize = 64;
/// The most countries a history remembers; beyond, the least recently seen is forgotten.
pub const MAX_COUNTRIES: usize = 64;
/// The most resource classes a history remembers; beyond, the least recently accessed is
/// forgotten (a first access again).
pub const MAX_ACCESSES: usize = 256;
/// The longest device fingerprint, country or resource class a history learns, in bytes: a
/// longer one is never learned (it stays new).
pub const MAX_LEARNED_BYTES: usize = 256;

/// Inserts `key` seen `at` into `map`, forgetting the entry seen least recently when the map is
/// full (the new one, when it is older than all of them: nothing newer is forgotten for it).
fn remember(map: &mut BTreeMap<String, Timestamp>, key: &str, at: Timestamp, max: usize) {
    if key.len() > MAX_LEARNED_BYTES {
        return;
    }
    if let Some(e) = map.get_mut(key) {
        // A time further ahead than the clocks' skew is no evidence (see
        // `risk::HISTORY_CLOCK_SKEW_SECS`): the event's own time replaces it.
        *e = if crate::risk::age(at, *e).is_none() {
            at
        } else {
            (*e).max(at)
        };
        return;
    }
    while map.len() >= max.max(1) {
        let Some((oldest, seen)) = map.iter().min_by_key(|(k, t)| (**t, *k)) else {
            break;
        };
        if *seen > at {
            return;
        }
        let oldest = oldest.clone();
        map.remove(&oldest);
    }
    map.insert(key.to_string(), at);
}

/// What an allowed event teaches the history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryUpdate {
    /// A device to remember.
    pub device: Option<String>,
    /// A country seen now.
    pub country: Option<(String, Timestamp)>,
    /// The new last sign-in.
    pub last_sign_in: Option<LastSignIn>,
    /// A resource class accessed now.
    pub access: Option<(String, Timestamp)>,
}

impl UserHistory {
    /// When the user last signed in from country `code`, and the code as the history holds it:
    /// codes are ISO 3166 (`fr` is `FR`: an outside check found a lower-case code new where
    /// the history knew the country), so one the history holds in other capitals is found too
    /// (among at most [`MAX_COUNTRIES`]).
    #[must_use]
    pub fn country_seen(&self, code: &str) -> Option<(&String, &Timestamp)> {
        self.countries.get_key_value(code).or_else(|| {
            self.countries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(code))
        })
    }
}

impl HistoryUpdate {
    /// Applies the update.
    pub fn apply(&self, h: &mut UserHistory) {
        if let Some(d) = &self.device
            && d.len() <= MAX_LEARNED_BYTES
            && !h.devices.contains(d)
        {
            while h.devices.len() >= MAX_DEVICES {
                h.devices.pop_first();
            }
            h.devices.insert(d.clone());
        }
        if let Some((c, at)) = &self.country {
            remember(&mut h.countries, c, *at, MAX_COUNTRIES);
        }
        // Only evidence improves the history: a sign-in without a location keeps the last known
        // place (the impossible-travel reference), and an older place never replaces a newer one
        // — unless the newer is dated later than the clocks' skew allows, which is no evidence
        // (`risk::HISTORY_CLOCK_SKEW_SECS`). (A place not on Earth is no location: a challenge
        // stored by an earlier build may hold one.)
        if let Some(l) = &self.last_sign_in
            && l.location.is_some_and(|p| p.is_valid())
            && h.last_sign_in.as_ref().is_none_or(|old| {
                old.location.is_none() || old.at <= l.at || crate::risk::age(l.at, old.at).is_none()
            })
        {
            h.last_sign_in = Some(l.clone());
        }
        if let Some((r, at)) = &self.access {
            remember(&mut h.accesses, r, *at, MAX_ACCESSES);
        }
    }
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.device.is_none()
            && self.country.is_none()
            && self.last_sign_in.is_none()
            && self.access.is_none()
    }
}

/// An authentication event: factors proved at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEvent {
    /// When.
    pub at: Timestamp,
    /// Which factors.
    pub factors: FactorSet,
    /// The most this event may prove (an access token's `acr`); `None`: what its factors prove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Aal>,
    /// An authentication whose factors nobody named (an access token with an `acr` and no
    /// usable `amr`): with no factors, it proves its `cap` to `factor any` policies only (see
    /// [`AuthEvent::proves`]). Said, never inferred: an event whose factors are lost
    /// proves nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unnamed: bool,
}

/// How far after `now` an authentication may be dated and still count as made now: an
/// identity provider's clock ahead of ours (a token's `auth_time` is accepted within its
/// leeway, 30 s by default). Later still, it proves nothing until then (an outside check: a
/// token dated 5 s ahead completed its challenge, and the retry was asked again).
pub const AUTH_CLOCK_SKEW_SECS: i64 = 60;

/// How long before `now` an authentication dated `at` was made: 0 when up to
/// [`AUTH_CLOCK_SKEW_SECS`] later, `None` when later still.
#[must_use]
pub fn auth_age(now: Timestamp, at: Timestamp) -> Option<u64> {
    let age = now.since(at);
    (age >= -AUTH_CLOCK_SKEW_SECS).then(|| u64::try_from(age.max(0)).unwrap_or(0))
}

impl AuthEvent {
    /// Whether this event proves `aal` with one of `allowed`: one of its factors reaches `aal`
    /// (at most its cap). An event said to name no factor ([`AuthEvent::unnamed`]: a token's
    /// `acr` alone, the identity provider did not say how the user authenticated) proves its cap
    /// to a policy that allows any factor, and nothing to a policy that names factors; and only
    /// an AAL some factor of the tenant's table reaches (a requirement no factor can meet is a
    /// conflict, which no token's word settles).
    #[must_use]
    pub fn proves(&self, aal: Aal, allowed: FactorSet, strengths: &StrengthTable) -> bool {
        let reaches = |factors: FactorSet| factors.iter().any(|f| strengths.strength(f) >= aal);
        let reached = if self.unnamed && self.factors.is_empty() {
            // Its cap is all it says: without one (never written so, but data), nothing.
            allowed == FactorSet::ANY && self.cap.is_some() && reaches(FactorSet::ANY)
        } else {
            reaches(self.factors.intersect(allowed))
        };
        reached && self.cap.is_none_or(|c| aal <= c)
    }
    /// The highest AAL the event proves.
    #[must_use]
    pub fn best(&self, strengths: &StrengthTable) -> Option<Aal> {
        if self.unnamed && self.factors.is_empty() {
            // Its cap, as far as a factor of the table reaches (see `proves`).
            let reach = strengths.best(FactorSet::ANY)?;
            return self.cap.map(|c| c.min(reach));
        }
        let b = strengths.best(self.factors)?;
        Some(self.cap.map_or(b, |c| b.min(c)))
    }
}

/// State of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeState {
    /// Waiting for the user.
    Open,
    /// Completed once; cannot complete again.
    Completed,
    /// Failed, expired or superseded.
    Closed,
}

/// The request an `every time` grant is bound to: the values of the attributes its policies
/// read (`None`: absent). A grant earned for a 1,500 payout does not pay out 1,000,000.
pub type Binding = Vec<(String, Option<Value>)>;

/// A step-up challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    /// Identifier.
    pub id: ChallengeId,
    /// The application whose request caused it.
    #[serde(default)]
    pub application: Arc<str>,
    /// Whether it guards the session's sign-in (never cancelled by a later challenge).
    #[serde(default)]
    pub sign_in: bool,
    /// The attribute values of the request it guards (for `every time` grants).
    #[serde(default)]
    pub binding: Binding,
    /// The merged requirement.
    pub requirement: Requirement,
    /// Factors that can complete it.
    pub eligible: FactorSet,
    /// The policies that caused it, sorted.
    pub policies: Names,
    /// Those of them that are `every time`.
    pub every_time: Vec<String>,
    /// The message shown to the user.
    pub message: Arc<str>,
    /// Issued at.
    pub issued_at: Timestamp,
    /// Cannot complete at or after this time.
    pub expires_at: Timestamp,
    /// The event it guards (`operation:change_email`).
    pub event_key: Arc<str>,
    /// Open, completed or closed.
    pub state: ChallengeState,
    /// What completing it teaches the history (a sign-in's device, country, place; an
    /// access's first access). Boxed: an operation's challenge, the common one, teaches none,
    /// and a challenge is moved and copied whole with its session.
    pub pending_history: Option<Box<HistoryUpdate>>,
    /// The sign-in's own authentication event, granted on completion.
    pub pending_auth: Option<AuthEvent>,
    /// When the login whose request issued it authenticated (its token's `auth_time`), when
    /// the HTTP layer knows it: a token completes the challenge only if it authenticated later
    /// still. Both times are the identity provider's clock, so a skew between it and ours (up
    /// to the tokens' leeway) cannot make the issuing login's own token look fresh. The engine
    /// does not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Timestamp>,
    /// Attempts that failed (a factor not verified, not enrolled or not eligible): the user may
    /// try again, up to [`MAX_FAILED_ATTEMPTS`] failures, after which it is closed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u8,
}

/// Failed attempts after which a challenge is closed (a mistyped code can be typed again; a
/// guesser is stopped, and asked again only through a new request).
pub const MAX_FAILED_ATTEMPTS: u8 = 3;

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's `skip_serializing_if` passes a reference"
)]
fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Permission for one retry of an operation under `every time` policies, bound to the request
/// that earned it: application, event and the attribute values its policies read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The challenge whose completion granted it.
    pub challenge_id: ChallengeId,
    /// The application it was earned in.
    #[serde(default)]
    pub application: Arc<str>,
    /// The event it allows once.
    pub event_key: Arc<str>,
    /// The attribute values of the request that earned it.
    #[serde(default)]
    pub binding: Binding,
    /// The authentication that completed its challenge: the grant satisfies a policy only if it
    /// proves the policy's requirement as the rules deciding read it (a reload may have made
    /// the policy stricter since). `None` in a grant stored before it was kept: it allows
    /// nothing.
    #[serde(default)]
    pub proof: Option<AuthEvent>,
    /// The `every time` policies it satisfies.
    pub policies: Vec<String>,
    /// Must be used before this time.
    pub expires_at: Timestamp,
    /// The login that earned it (the `auth_time` of the token that completed its challenge),
    /// when the session is shared by logins: only that login may spend it. The HTTP layer sets
    /// it; the engine does not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Timestamp>,
}

/// A session's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Whether the session is established: by an allowed sign-in, or by the completion of the
    /// sign-in's own step-up (SPEC §10). Until then every other event is denied.
    #[serde(default)]
    pub established: bool,
    /// The version of the session as stored: a commit succeeds only if it is unchanged since
    /// the session was loaded (compare and set), and bumps it.
    #[serde(default)]
    pub version: u64,
    /// Authentication events (sign-in and completed step-ups), oldest first.
    pub events: Vec<AuthEvent>,
    /// Challenges, oldest first (only the latest few are kept).
    pub challenges: Vec<Challenge>,
    /// Unused `every time` grants.
    pub grants: Vec<Grant>,
    /// Counter of challenges issued (makes ids unique).
    pub seq: u64,
    /// When the logins this session accepted authenticated (a token's `auth_time`), newest
    /// last, at most [`MAX_LOGINS`]: those whose sign-in was allowed or whose authentication
    /// completed a challenge. A service whose tokens carry no session id keeps one session per
    /// user; a token that authenticated at another time is another login, and its sign-in is
    /// decided, with its own context, before it is accepted (SPEC §10, §11). The engine does
    /// not read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logins: Vec<Timestamp>,
    /// The authentications (their tokens' `auth_time`) that completed one of this session's
    /// challenges, of the last [`CHALLENGE_TTL_SECS`](crate::CHALLENGE_TTL_SECS) (an
    /// older one could complete no challenge still open), at most [`MAX_USED_AUTHS`]: an
    /// authentication completes at most one challenge (SPEC §10, §11: one step-up token must
    /// not pay out twice, through a second challenge issued before it, or dated before it by a
    /// clock that runs behind the identity provider's), while two step-ups made apart complete
    /// one each, in any order. The HTTP layer keeps it; the engine does not read it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<Timestamp>,
    /// The latest authentication forgotten from [`SessionState::completed`] because it was
    /// full while still inside the window: it and every earlier one count as used (a
    /// forgotten authentication must not complete a second challenge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_floor: Option<Timestamp>,
}

/// Most challenges kept per session.
pub const MAX_CHALLENGES: usize = 8;
/// Most authentications remembered one by one as having completed a challenge (of the last
/// five minutes: 32 step-ups there are beyond a person); past them the oldest are forgotten,
/// and every authentication up to the latest forgotten counts as used.
pub const MAX_USED_AUTHS: usize = 32;
/// Most accepted logins remembered per session (an older one is decided as a sign-in again).
pub const MAX_LOGINS: usize = 8;
/// Most authentication events kept per session.
pub const MAX_EVENTS: usize = 32;

impl SessionState {
    /// The highest AAL the session proves (SPEC §7: "the highest AAL the session proves just
    /// before the event"): the best any of its authentication events proves. Proving has no
    /// age (SPEC §2); whether a proof is recent enough is what *satisfying* a requirement asks,
    /// so a session can prove aal3 and still be stepped up for a policy whose `for` has lapsed.
    #[must_use]
    pub fn aal(&self, strengths: &StrengthTable) -> Option<Aal> {
        self.events.iter().filter_map(|e| e.best(strengths)).max()
    }
    /// Whether a login authenticated at `at` was accepted.
    #[must_use]
    pub fn accepted(&self, at: Timestamp) -> bool {
        self.logins.contains(&at)
    }

    /// Remembers that the login authenticated at `at` was accepted; returns whether it is new.
    pub fn accept(&mut self, at: Timestamp) -> bool {
        if self.accepted(at) {
            return false;
        }
        self.logins.push(at);
        if self.logins.len() > MAX_LOGINS {
            let drop = self.logins.len() - MAX_LOGINS;
            self.logins.drain(..drop);
        }
        true
    }

    /// Whether the authentication made at `at` has completed a challenge here.
    #[must_use]
    pub fn used(&self, at: Timestamp) -> bool {
        self.completed.contains(&at) || self.completed_floor.is_some_and(|f| at <= f)
    }

    /// Remembers that the authentication made at `at` completed a challenge (at `now`),
    /// forgetting those too old to complete any challenge still open.
    pub fn use_auth(&mut self, at: Timestamp, now: Timestamp) {
        let horizon = now.0.saturating_sub(crate::CHALLENGE_TTL_SECS);
        self.completed.retain(|t| t.0 > horizon);
        if self.completed_floor.is_some_and(|f| f.0 <= horizon) {
            self.completed_floor = None;
        }
        if !self.completed.contains(&at) {
            self.completed.push(at);
        }
        if self.completed.len() > MAX_USED_AUTHS {
            let drop = self.completed.len() - MAX_USED_AUTHS;
            // Forgotten while they could still complete a challenge: the floor keeps them used.
            let forgotten = self.completed.drain(..drop).max();
            self.completed_floor = self.completed_floor.max(forgotten);
        }
    }

    /// Keeps the state bounded: old challenges and events are dropped. The oldest answered or
    /// closed challenge goes first, then the oldest: an open challenge (a sign-in waiting above
    /// all) is what an answer looks for, and dropping a user's waiting sign-in to make room for
    /// another login's would leave the other one alone to be completed.
    pub fn trim(&mut self) {
        while self.challenges.len() > MAX_CHALLENGES {
            let at = self
                .challenges
                .iter()
                .position(|c| c.state != ChallengeState::Open)
                .unwrap_or(0);
            self.challenges.remove(at);
        }
        if self.events.len() > MAX_EVENTS {
            // Keep the sign-in event (first) and the most recent ones.
            let drop = self.events.len() - MAX_EVENTS;
            self.events.drain(1..=drop);
        }
    }
}

/// Everything the engine reads about a (tenant, user, session).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The user's history; `Err` when the store could not provide it (signals then count as present).
    pub history: Result<UserHistory, String>,
    /// The session.
    pub session: SessionState,
}

impl State {
    /// A state whose session is established (its sign-in was allowed) and holds nothing else:
    /// what a service that keeps sessions in access tokens decides against.
    #[must_use]
    pub fn established() -> Self {
        State {
            history: Ok(UserHistory::default()),
            session: SessionState {
                established: true,
                ..SessionState::default()
            },
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State {
            history: Ok(UserHistory::default()),
            session: SessionState::default(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;

    /// An authentication dated up to the skew after now is made now; later, it proves nothing.
    #[test]
    fn an_authentication_a_little_ahead_is_made_now_and_far_ahead_is_none() {
        let now = Timestamp(1_800_000_000);
        assert_eq!(auth_age(now, Timestamp(now.0 - 90)), Some(90));
        assert_eq!(auth_age(now, now), Some(0));
        assert_eq!(auth_age(now, Timestamp(now.0 + 5)), Some(0));
        assert_eq!(
            auth_age(now, Timestamp(now.0 + AUTH_CLOCK_SKEW_SECS)),
            Some(0)
        );
        assert_eq!(
            auth_age(now, Timestamp(now.0 + AUTH_CLOCK_SKEW_SECS + 1)),
            None
        );
        assert_eq!(auth_age(now, Timestamp(i64::MAX)), None);
        assert_eq!(auth_age(now, Timestamp(i64::MIN)).map(|_| ()), Some(()));
    }

    /// The authentications that completed a challenge are bounded without forgetting that
    /// one was used: past `MAX_USED_AUTHS` within the window, every authentication up to the
    /// latest forgotten counts as used (a review found an evicted one completing a second
    /// challenge); once the window has passed them, they are dropped, and so is the floor.
    #[test]
    fn used_authentications_are_bounded_and_stay_used() {
        let mut s = SessionState::default();
        let now = Timestamp(1_800_000_000);
        let first = Timestamp(now.0 + 28);
        s.use_auth(first, now);
        for i in 0..MAX_USED_AUTHS {
            s.use_auth(Timestamp(now.0 + 100 + i as i64), now);
        }
        assert_eq!(s.completed.len(), MAX_USED_AUTHS);
        assert!(!s.completed.contains(&first), "forgotten one by one");
        assert!(s.used(first), "still used");
        assert!(
            s.used(Timestamp(now.0 + 1)),
            "anything earlier counts as used"
        );
        assert!(!s.used(Timestamp(now.0 + 1_000)), "a new one is not");
        // Five minutes on, all of them are too old to complete a challenge still open.
        let later = Timestamp(now.0 + 100 + crate::CHALLENGE_TTL_SECS + MAX_USED_AUTHS as i64);
        s.use_auth(Timestamp(later.0), later);
        assert_eq!((s.completed.len(), s.completed_floor), (1, None));
    }

    /// A review's finding: every allowed sign-in taught its device (a fingerprint the client
    /// sends) with no limit, and each decision reads and writes the whole history: 4,000 sign-ins
    /// with distinct devices took 147 s. A history remembers at most so many devices, countries
    /// and resource classes, each no longer than so many bytes; what it forgets is new again.
    #[test]
    fn a_history_is_bounded_and_forgets_what_is_least_recent() {
        let mut h = UserHistory::default();
        let learn = |h: &mut UserHistory, i: i64, device: String| {
            HistoryUpdate {
                device: Some(device),
                country: Some((format!("C{i}"), Timestamp(i))),
                last_sign_in: None,
                access: Some((format!("r{i}"), Timestamp(i))),
            }
            .apply(h);
        };
        for i in 0..1_000 {
            learn(&mut h, i, format!("device-{i:04}"));
        }
        assert_eq!(h.devices.len(), MAX_DEVICES);
        assert!(
            h.devices.contains("device-0999"),
            "the newest is remembered"
        );
        assert_eq!(h.countries.len(), MAX_COUNTRIES);
        assert_eq!(h.accesses.len(), MAX_ACCESSES);
        // The least recently seen are forgotten; one seen again is kept.
        assert!(h.countries.contains_key("C999") && !h.countries.contains_key("C0"));
        assert!(h.accesses.contains_key("r999") && !h.accesses.contains_key("r743"));
        learn(&mut h, 2_000, "device-0999".into());
        assert_eq!(h.countries.len(), MAX_COUNTRIES);
        HistoryUpdate {
            country: Some(("C950".into(), Timestamp(3_000))),
            ..HistoryUpdate::default()
        }
        .apply(&mut h);
        HistoryUpdate {
            country: Some(("C4000".into(), Timestamp(4_000))),
            ..HistoryUpdate::default()
        }
        .apply(&mut h);
        assert!(
            h.countries.contains_key("C950"),
            "seen again, no longer the oldest"
        );
        assert!(
            !h.countries.contains_key("C937"),
            "the oldest was forgotten for C4000"
        );
        assert!(h.countries.contains_key("C938") && h.countries.contains_key("C4000"));
        // Something older than all a full history remembers replaces none of it.
        let before = h.clone();
        HistoryUpdate {
            country: Some(("old".into(), Timestamp(-5))),
            ..HistoryUpdate::default()
        }
        .apply(&mut h);
        assert_eq!(h, before);
        // A name longer than the limit is never learned.
        let long = "x".repeat(MAX_LEARNED_BYTES + 1);
        let mut fresh = UserHistory::default();
        HistoryUpdate {
            device: Some(long.clone()),
            country: Some((long.clone(), Timestamp(1))),
            access: Some((long.clone(), Timestamp(1))),
            last_sign_in: None,
        }
        .apply(&mut fresh);
        assert_eq!(fresh, UserHistory::default());
        HistoryUpdate {
            device: Some("x".repeat(MAX_LEARNED_BYTES)),
            ..HistoryUpdate::default()
        }
        .apply(&mut fresh);
        assert_eq!(fresh.devices.len(), 1);
    }

    #[test]
    fn a_session_remembers_its_last_accepted_logins_and_reads_as_before_without_them() {
        let mut s = SessionState::default();
        assert!(!s.accepted(Timestamp(1)));
        assert!(s.accept(Timestamp(1)), "a new login");
        assert!(!s.accept(Timestamp(1)), "the same login again");
        for at in 2..=10 {
            s.accept(Timestamp(at));
        }
        assert_eq!(s.logins.len(), MAX_LOGINS);
        assert!(
            !s.accepted(Timestamp(1)) && !s.accepted(Timestamp(2)),
            "the oldest are forgotten: their sign-in is decided again"
        );
        assert!(s.accepted(Timestamp(3)) && s.accepted(Timestamp(10)));
        // Stored sessions without the field read as before; a session with none writes as before.
        let old: SessionState = serde_json::from_str(
            r#"{"established":true,"version":3,"events":[],"challenges":[],"grants":[],"seq":0}"#,
        )
        .unwrap();
        assert!(old.established && old.logins.is_empty());
        assert!(!serde_json::to_string(&old).unwrap().contains("logins"));
    }

    /// A challenge stored without the issuing login's `auth_time` (by the engine, or before the
    /// field) reads and writes as before; one with it keeps it.
    #[test]
    fn a_challenges_login_is_optional_in_the_store() {
        let set = crate::CompiledSet::from_text(
            "t.policy",
            "operation pay sensitive\npolicy p { when operation == pay require aal2 }\n",
        )
        .unwrap();
        let req = crate::engine::tests::pay("default", "", vec![]);
        let d = set.decide(&req, &State::established(), false);
        let mut s = d.effects.session.unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("\"login\""), "{text}");
        let back: SessionState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.challenges.last().map(|c| c.login), Some(None));
        if let Some(c) = s.challenges.last_mut() {
            c.login = Some(Timestamp(1_799_999_990));
        }
        let back: SessionState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
