//! Step 4, challenge: a step-up issues a challenge; a `step_up` event completes the latest open
//! one (SPEC §4 rules 6–7). A challenge carries what completing it teaches the history and the
//! session, and what an `every time` grant it leaves is bound to.

use std::sync::Arc;

use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use stepup_core::{Factor, FactorSet, Validity};
use stepup_dsl::model::Tenant;

use super::audit;
use super::merge::{Merge, Merged, binding, sorted_names};
use crate::decision::{ChallengeId, Decision, DecisionKind, Names, SetHash, audit_names};
use crate::request::{Event, Request};
use crate::state::{AuthEvent, Challenge, ChallengeState, Grant, MAX_FAILED_ATTEMPTS, State};

/// How long a challenge stays open.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// Makes `d` a step-up: a new challenge for the merged requirement, in the session to commit,
/// and (when `audited`) its `auth.step_up_initiated` record.
#[expect(
    clippy::too_many_arguments,
    reason = "the merge's findings and the request, passed down the pipeline"
)]
pub(crate) fn issue(
    d: &mut Decision,
    ids: &IdSeed,
    req: &Request,
    state: &State,
    merge: &Merge<'_, '_>,
    m: &Merged,
    audited: bool,
    event_key: Arc<str>,
) {
    let aal = m.requirement.aal;
    let policies = merge.unsatisfied_names(&d.fired);
    let message = merge.message(aal);
    let mut s = state.session.clone();
    // A counter at its end (a store written by hand, or tampered with) starts again rather than
    // panicking: the id also hashes the time, and an open challenge is found by its place.
    s.seq = s.seq.wrapping_add(1);
    let id = ids.id(req, s.seq);
    // What completing it teaches: what allowing the event would have (a sign-in's device,
    // country and place and its own authentication event; an access's first access).
    let (pending_history, pending_auth) = super::allowed_effects(req);
    // A new challenge supersedes open ones, but never the session's pending sign-in, unless it
    // is a sign-in again from the same place (device, country and location: the same login
    // trying again; else two sign-ins are waiting, and an answer completes neither).
    let again_from = matches!(req.event, Event::SignIn { .. })
        .then_some(pending_history.as_ref())
        .flatten()
        .filter(|h| h.device.is_some());
    for c in &mut s.challenges {
        let same_login = c.sign_in
            && again_from.is_some_and(|here| {
                c.pending_history
                    .as_ref()
                    .is_some_and(|h| same_origin(h, here))
            });
        if c.state == ChallengeState::Open && (!c.sign_in || same_login) {
            c.state = ChallengeState::Closed;
        }
    }
    let every_time: Vec<_> = merge
        .judged
        .iter()
        .filter(|j| !j.satisfied && j.policy.requirement.validity == Validity::EveryTime)
        .collect();
    let bound: Vec<Box<str>> = every_time
        .iter()
        .flat_map(|j| j.reads.iter().cloned())
        .collect();
    // Grown by exactly one (a first capacity of four challenges is over 1 KiB).
    s.challenges.reserve_exact(1);
    s.challenges.push(Challenge {
        id: id.clone(),
        application: req.application.clone(),
        sign_in: matches!(req.event, Event::SignIn { .. }),
        binding: binding(req, &bound),
        requirement: m.requirement,
        eligible: m.eligible,
        policies: policies.clone(),
        every_time: sorted_names(every_time.iter().map(|j| j.policy)),
        message: message.clone(),
        issued_at: req.now,
        expires_at: req.now.plus(CHALLENGE_TTL_SECS),
        event_key: Arc::clone(&event_key),
        state: ChallengeState::Open,
        pending_history: pending_history.map(Box::new),
        pending_auth,
        login: None,
        failures: 0,
    });
    s.trim();
    d.kind = DecisionKind::StepUp;
    d.effects.session = Some(s);
    d.message = Some(message);
    d.challenge_id = Some(id);
    if audited {
        audit::push_keyed(
            d,
            audit_names::INITIATED,
            req,
            event_key,
            policies,
            Some(aal),
        );
    }
}

/// Whether two sign-ins come from one place: the same device, country and location (a device
/// id alone comes from the client, and another login can send the user's).
fn same_origin(a: &crate::state::HistoryUpdate, b: &crate::state::HistoryUpdate) -> bool {
    let place = |h: &crate::state::HistoryUpdate| h.last_sign_in.as_ref().map(|l| l.location);
    a.device == b.device
        && a.country.as_ref().map(|(c, _)| c) == b.country.as_ref().map(|(c, _)| c)
        && place(a) == place(b)
}

/// What challenge ids are made from: a SipHash-1-3 with the set's hash already written (made
/// once per compiled set, as every id of the set starts with it).
#[derive(Debug, Clone)]
pub(crate) struct IdSeed(SipHasher13);

impl IdSeed {
    /// The hasher of the set whose hash is `hash`.
    pub(crate) fn new(hash: &SetHash) -> Self {
        let mut h = SipHasher13::new_with_keys(CHALLENGE_ID_KEYS.0, CHALLENGE_ID_KEYS.1);
        write_part(&mut h, hash.as_bytes());
        IdSeed(h)
    }

    /// The challenge's id: `ch_` and 16 hex digits of a SipHash-1-3 of what issued it (the
    /// set, the request's names, the session's sequence number, the time). The session's
    /// sequence number makes every input in a session different, so a repeat there is a 64-bit
    /// coincidence; across sessions, 64 bits make a repeat improbable short of billions of
    /// challenges (the birthday bound is near 2^32). It names a
    /// challenge in records and grants, it proves nothing: completing a challenge never takes
    /// an id from the client. Each name is written with its length, so no two lists of names
    /// hash the same text. The keys are public, so an id confirms a guessed user and session: a
    /// pseudonymised decision log replaces ids too (`stepup-decisionlog`). Since the keys are
    /// public, the hash is no MAC; it only has to spread: SipHash-1-3 (the rounds of Rust's own
    /// hash maps) spreads as well as 2-4 for this, in about half the rounds (2-4 was a tenth of a
    /// step-up's instructions).
    pub(crate) fn id(&self, req: &Request, seq: u64) -> ChallengeId {
        let mut h = self.0;
        let parts = [
            req.tenant.as_bytes(),
            req.application.as_bytes(),
            req.user.as_bytes(),
            req.session.as_bytes(),
        ];
        // The hasher reads a stream of bytes: the parts, their lengths and the numbers are
        // gathered into one buffer and written at once when they fit (one call hashes whole
        // words; a call per part hashes each part's tail byte by byte). Same stream, same id.
        let mut buf = [0u8; 256];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            let slot = buf.get_mut(at..at + bytes.len());
            if let Some(slot) = slot {
                slot.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        for part in parts {
            put(&(part.len() as u64).to_le_bytes());
            put(part);
        }
        put(&seq.to_le_bytes());
        put(&req.now.0.to_le_bytes());
        match buf.get(..at) {
            Some(stream) => h.write(stream),
            None => {
                for part in parts {
                    write_part(&mut h, part);
                }
                h.write_u64(seq.to_le());
                h.write_i64(req.now.0.to_le());
            }
        }
        let digest = h.finish();
        // `ch_` and 16 hex digits, held in place.
        ChallengeId::hex([hex8(digest >> 32), hex8(digest)])
    }
}

/// The eight lowercase hex digits of the low 32 bits of `x`, most significant first, all at
/// once: each nibble is spread to a byte of its own, then each byte made a digit (`'0' + n`,
/// and 39 more for a letter: `'a' - '0' - 10`). A nibble of 10 or more is one whose byte
/// reaches 16 when 6 is added; no byte carries into the next (at most 15 + 6, then `'f'`).
fn hex8(x: u64) -> u64 {
    let v = x & 0xFFFF_FFFF;
    let v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    v + 0x3030_3030_3030_3030 + letters * 39
}

/// Writes one name, after its length. The ids must be the same on every machine: the hasher's
/// `write_u64(i)` hashes the word `i.to_le()`, so it is given `i.to_le()`, and hashes `i` on
/// either byte order (the word path: hashing the bytes of `to_le_bytes` instead cost about 4%
/// of a step-up).
fn write_part(h: &mut SipHasher13, part: &[u8]) {
    h.write_u64((part.len() as u64).to_le());
    h.write(part);
}

/// The challenge id's hash keys: fixed, so that a replay gives the same ids on every machine
/// (the ids are names, not secrets).
const CHALLENGE_ID_KEYS: (u64, u64) = (0x7374_6570_7570_6368, 0x616c_6c65_6e67_6573);

/// Completes the latest open challenge with `factor` (SPEC §4 rule 7): once, with an eligible
/// enrolled factor, before it expires; a sign-in's challenge only while the session is not
/// established (as the HTTP layer's completion).
#[must_use]
pub(crate) fn complete(
    tenant: &Tenant,
    hash: SetHash,
    req: &Request,
    state: &State,
    factor: Factor,
    success: bool,
) -> Decision {
    let session = &state.session;
    let mut d = Decision::new(DecisionKind::Failed, hash);
    d.session_aal = session.aal(&tenant.strengths);
    // A sign-in's challenge is the session's pending sign-in only while the session is not
    // established; once it is, a sign-in challenge in it is another login's (an embedder that
    // gives a user's logins one session id), and this session's answer never completes it.
    let latest = session
        .challenges
        .iter()
        .rposition(|c| c.state == ChallengeState::Open && !(c.sign_in && session.established));
    let Some((i, c)) = latest.and_then(|i| Some((i, session.challenges.get(i)?))) else {
        d.message = Some("There is no open challenge to complete.".into());
        push_completion(&mut d, audit_names::FAILED, req, factor, None);
        return d;
    };
    d.challenge_id = Some(c.id.clone());
    d.required = Some(c.requirement);
    d.eligible = c.eligible;
    d.fired = c.policies.clone();
    // Two sign-ins or more waiting in one session, expired or not (an embedder that gives a
    // user's logins one session id; a sign-in answered a little late is no less a login of its
    // own): the answer cannot say whose it is, and completing the latest would teach the
    // history the other login's device (an attacker's). None is completed: all are closed, and
    // each login signs in again.
    let waiting = |x: &Challenge| x.sign_in && x.state == ChallengeState::Open;
    if c.sign_in && session.challenges.iter().filter(|x| waiting(x)).count() > 1 {
        let mut s = session.clone();
        for x in &mut s.challenges {
            if waiting(x) {
                x.state = ChallengeState::Closed;
            }
        }
        d.message = Some("Several sign-ins are waiting in this session; sign in again.".into());
        d.effects.session = Some(s);
        push_completion(&mut d, audit_names::FAILED, req, factor, Some(c));
        return d;
    }
    let expired = req.now >= c.expires_at;
    let failure = if expired {
        Some("The challenge expired; try the action again.")
    } else if !success {
        Some("The factor could not be verified.")
    } else if !req.enrolled.contains(factor) {
        Some("That factor is not enrolled.")
    } else if !c.eligible.contains(factor) {
        Some("That factor cannot satisfy this challenge.")
    } else {
        None
    };
    let mut s = session.clone();
    // A failed attempt leaves the challenge open for another, up to `MAX_FAILED_ATTEMPTS`
    // failures (a mistyped code is typed again); an expired one is closed. Either way the
    // session gains nothing (SPEC §4 rule 7).
    let mut left = 0;
    if let Some(slot) = s.challenges.get_mut(i) {
        slot.state = match failure {
            None => ChallengeState::Completed,
            Some(_) if expired => ChallengeState::Closed,
            Some(_) => {
                slot.failures = slot.failures.saturating_add(1);
                left = MAX_FAILED_ATTEMPTS.saturating_sub(slot.failures);
                if left == 0 {
                    ChallengeState::Closed
                } else {
                    ChallengeState::Open
                }
            }
        };
    }
    if let Some(msg) = failure {
        d.message = Some(match left {
            0 => msg.into(),
            1 => format!("{msg} One attempt left.").into(),
            n => format!("{msg} {n} attempts left.").into(),
        });
        d.effects.session = Some(s);
        push_completion(&mut d, audit_names::FAILED, req, factor, Some(c));
        return d;
    }
    d.kind = DecisionKind::Completed;
    s.events.extend(c.pending_auth);
    s.established |= c.sign_in;
    let event = AuthEvent {
        at: req.now,
        factors: FactorSet::one(factor),
        cap: None,
        unnamed: false,
    };
    s.events.push(event);
    // A sign-in's challenge leaves no grant: its completion is the sign-in's answer (no grant
    // allows a sign-in, and none is left for another login's to find).
    if !c.every_time.is_empty() && !c.sign_in {
        s.grants.retain(|g| g.expires_at > req.now);
        s.grants.push(Grant {
            challenge_id: c.id.clone(),
            application: c.application.clone(),
            binding: c.binding.clone(),
            // What the completion is known to prove: its factor, at most the AAL the challenge
            // asked (a token may have been capped there by its `acr`), so that a reload asking
            // more of the policy asks the retry again.
            proof: Some(AuthEvent {
                cap: Some(c.requirement.aal),
                ..event
            }),
            event_key: c.event_key.clone(),
            policies: c.every_time.clone(),
            expires_at: req.now.plus(CHALLENGE_TTL_SECS),
            login: None,
        });
    }
    s.trim();
    d.effects.session = Some(s);
    d.effects.history.clone_from(&c.pending_history);
    d.message = Some(c.message.clone());
    push_completion(&mut d, audit_names::COMPLETED, req, factor, Some(c));
    d
}

/// The record of a completion: the factor and the challenge it answered.
fn push_completion(
    d: &mut Decision,
    name: &'static str,
    req: &Request,
    factor: Factor,
    c: Option<&Challenge>,
) {
    audit::push(
        d,
        name,
        req,
        c.map_or(Names::EMPTY, |c| c.policies.clone()),
        c.map(|c| c.requirement.aal),
    );
    if let Some(r) = d.audit.last_mut() {
        r.factor = Some(factor);
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;
    use stepup_core::Timestamp;

    /// The id as documented: SipHash-1-3 with the fixed keys over the set's hash, the tenant,
    /// application, user and session (each after its length as 8 little-endian bytes), the
    /// sequence number and the time, as one stream; `ch_` and its 16 hex digits.
    fn documented(hash: &SetHash, req: &Request, seq: u64) -> String {
        let mut stream = Vec::new();
        for part in [
            hash.as_bytes(),
            req.tenant.as_bytes(),
            req.application.as_bytes(),
            req.user.as_bytes(),
            req.session.as_bytes(),
        ] {
            stream.extend((part.len() as u64).to_le_bytes());
            stream.extend(part);
        }
        stream.extend(seq.to_le_bytes());
        stream.extend(req.now.0.to_le_bytes());
        let mut h = SipHasher13::new_with_keys(CHALLENGE_ID_KEYS.0, CHALLENGE_ID_KEYS.1);
        h.write(&stream);
        format!("ch_{:016x}", h.finish())
    }

    /// The digits are `{:08x}`'s, for the nibbles 0 to 15 at every place and for words of
    /// every shape (the high half of the argument is ignored).
    #[test]
    fn hex8_is_the_formatted_digits() {
        let mut words = vec![0u64, u64::MAX, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        for place in 0..8 {
            for n in 0..16u64 {
                words.push(n << (4 * place));
                words.push(!(n << (4 * place)));
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..1_000 {
            x = x.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(1);
            words.push(x);
        }
        for w in words {
            assert_eq!(
                String::from_utf8_lossy(&hex8(w).to_be_bytes()),
                format!("{:08x}", w & 0xFFFF_FFFF),
                "{w:#x}"
            );
        }
    }

    /// Short names (gathered in one buffer) and long ones (written part by part) both give the
    /// documented id, and ids differ when any part does.
    #[test]
    fn ids_are_the_documented_hash_whatever_the_names_length() {
        let hash = SetHash::from("0123456789abcdef0123456789abcdef");
        let seed = IdSeed::new(&hash);
        let mut seen = std::collections::BTreeSet::new();
        for user in ["alice", "", &"u".repeat(255), &"é".repeat(300)] {
            for seq in [0, 1, u64::MAX] {
                let req = Request {
                    tenant: "t".into(),
                    application: "".into(),
                    user: user.into(),
                    enrolled: FactorSet::EMPTY,
                    session: "s1".into(),
                    event: Event::StepUp {
                        factor: Factor::Totp,
                        success: true,
                    },
                    now: Timestamp(1_800_000_000),
                };
                let id = seed.id(&req, seq);
                assert_eq!(
                    &*id,
                    documented(&hash, &req, seq),
                    "user of {} bytes",
                    user.len()
                );
                assert!(seen.insert(id.to_string()), "a repeated id");
            }
        }
    }
}
