//! Step 4, challenge: a step-up issues a challenge; a `step_up` event completes the latest open
//! one (SPEC §4 rules 6–7). A challenge carries what completing it teaches the history and the
//! session, and what an `every time` grant it leaves is bound to.

use std::sync::Arc;

use stepup_core::{Factor, FactorSet, Validity};
use stepup_dsl::model::Tenant;

use super::audit;
use super::merge::{Merge, Merged, binding, sorted_names};
use crate::decision::{Decision, DecisionKind, Names, SetHash, audit_names};
use crate::request::{Event, Request};
use crate::state::{AuthEvent, Challenge, ChallengeState, Grant, State};

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
    s.seq += 1;
    let id = ids.id(req, s.seq);
    // A new challenge supersedes open ones, but never the session's pending sign-in.
    for c in &mut s.challenges {
        if c.state == ChallengeState::Open && !c.sign_in {
            c.state = ChallengeState::Closed;
        }
    }
    // What completing it teaches: what allowing the event would have (a sign-in's device,
    // country and place and its own authentication event; an access's first access).
    let (pending_history, pending_auth) = super::allowed_effects(req);
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
        pending_history,
        pending_auth,
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

/// What challenge ids are made from: the id hash with the set's hash already taken in (made
/// once per compiled set, as every id of the set starts with it).
#[derive(Debug, Clone)]
pub(crate) struct IdSeed(IdHash);

impl IdSeed {
    /// The hasher of the set whose hash is `hash`.
    pub(crate) fn new(hash: &SetHash) -> Self {
        let mut h = IdHash::new();
        h.part(hash.as_bytes());
        IdSeed(h)
    }

    /// The challenge's id: `ch_` and 16 hex digits of the id hash ([`IdHash`]) of what issued
    /// it (the set, the request's names, the session's sequence number, the time). The
    /// session's sequence number makes it unique in its session; across sessions, 64 bits
    /// make a repeat improbable short of billions of challenges (the birthday bound is near
    /// 2^32). It names a challenge in records and grants, it proves nothing: completing a
    /// challenge never takes an id from the client. Each name is taken in after its length, so
    /// no two lists of names give the same stream. The hash has no secret, so an id confirms a
    /// guessed user and session: a pseudonymised decision log replaces ids too
    /// (`stepup-decisionlog`).
    pub(crate) fn id(&self, req: &Request, seq: u64) -> Arc<str> {
        let mut h = self.0;
        for part in [
            req.tenant.as_bytes(),
            req.application.as_bytes(),
            req.user.as_bytes(),
            req.session.as_bytes(),
        ] {
            h.part(part);
        }
        h.word(seq);
        // The time's two's-complement bits.
        h.word(req.now.0 as u64);
        let digest = h.finish();
        // `ch_` and 16 hex digits, written on the stack: the Arc is the one allocation.
        let mut buf = *b"ch_0000000000000000";
        let digits = [hex8(digest >> 32), hex8(digest)];
        for (slot, d) in buf
            .get_mut(3..)
            .unwrap_or_default()
            .iter_mut()
            .zip(digits.as_flattened())
        {
            *slot = *d;
        }
        // Hex digits are ASCII: the text is `buf` itself (the lossy decoding, which would keep
        // every byte's place, is never reached).
        std::str::from_utf8(&buf)
            .map_or_else(|_| Arc::from(&*String::from_utf8_lossy(&buf)), Arc::from)
    }
}

/// The hash of challenge ids, over a stream of 8-byte words (a name is its length, then its
/// bytes as little-endian words, the last one padded with zeros), in two lanes of one word
/// each:
/// - the spreading lane folds each word in with one 64×64→128-bit multiply whose two halves are
///   xored (the "folded multiply" of foldhash and wyhash);
/// - the keeping lane xors the word in, multiplies by an odd constant and rotates: a bijection
///   of the lane for every word, so two streams that differ keep different lanes whatever
///   follows (a word crafted to zero the spreading lane, making it forget what came before,
///   leaves this lane as it was).
///
/// The ids must be the same on every machine, so the stream and the constants are fixed and
/// public: an id is a name, not a secret or a MAC, and no 64-bit id with public constants
/// resists a deliberate search for a repeat (SipHash with public keys neither, at the birthday
/// bound). The hash only has to spread, and takes a word in a few instructions (SipHash-1-3
/// took a sixteenth of a step-up's instructions).
#[derive(Debug, Clone, Copy)]
struct IdHash {
    spread: u64,
    keep: u64,
}

/// The constants of [`IdHash`]: odd, their bits spread (the first three are digits of π).
const ID_K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x9e37_79b9_7f4a_7c15,
];

impl IdHash {
    fn new() -> Self {
        IdHash {
            spread: ID_K[0],
            keep: ID_K[2],
        }
    }

    /// Takes in one word.
    #[inline]
    fn word(&mut self, w: u64) {
        self.spread = fold(self.spread ^ w, ID_K[1]);
        self.keep = (self.keep ^ w).wrapping_mul(ID_K[3]).rotate_left(29);
    }

    /// Takes in one name: its length, then its bytes.
    #[inline]
    fn part(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let (words, rest) = bytes.as_chunks::<8>();
        for w in words {
            self.word(u64::from_le_bytes(*w));
        }
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            for (slot, b) in last.iter_mut().zip(rest) {
                *slot = *b;
            }
            self.word(u64::from_le_bytes(last));
        }
    }

    /// The digest: both lanes folded together, the keeping lane xored in last (so streams
    /// whose keeping lanes differ give ids that differ but by a coincidence of 64 bits).
    fn finish(self) -> u64 {
        fold(self.spread ^ self.keep ^ ID_K[2], ID_K[1]) ^ self.keep
    }
}

/// The folded multiply: the 128-bit product's two halves, xored.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The eight lowercase hex digits of the low 32 bits of `x`, most significant first, all at
/// once: each nibble is spread to a byte of its own, then each byte made a digit (`'0' + n`,
/// and 39 more for a letter: `'a' - '0' - 10`). A nibble of 10 or more is one whose byte
/// reaches 16 when 6 is added; no byte carries into the next (at most 15 + 6, then `'f'`).
fn hex8(x: u64) -> [u8; 8] {
    let v = x & 0xFFFF_FFFF;
    let v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (v + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// Completes the latest open challenge with `factor` (SPEC §4 rule 7): once, with an eligible
/// enrolled factor, before it expires.
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
    let latest = session
        .challenges
        .iter()
        .rposition(|c| c.state == ChallengeState::Open);
    let Some((i, c)) = latest.and_then(|i| Some((i, session.challenges.get(i)?))) else {
        d.message = Some("There is no open challenge to complete.".into());
        push_completion(&mut d, audit_names::FAILED, req, factor, None);
        return d;
    };
    d.challenge_id = Some(c.id.clone());
    d.required = Some(c.requirement);
    d.eligible = c.eligible;
    d.fired = c.policies.clone();
    let failure = if req.now >= c.expires_at {
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
    if let Some(slot) = s.challenges.get_mut(i) {
        slot.state = if failure.is_some() {
            ChallengeState::Closed
        } else {
            ChallengeState::Completed
        };
    }
    if let Some(msg) = failure {
        d.message = Some(msg.into());
        d.effects.session = Some(s);
        push_completion(&mut d, audit_names::FAILED, req, factor, Some(c));
        return d;
    }
    d.kind = DecisionKind::Completed;
    s.events.extend(c.pending_auth);
    s.established |= c.sign_in;
    s.events.push(AuthEvent {
        at: req.now,
        factors: FactorSet::one(factor),
        cap: None,
    });
    if !c.every_time.is_empty() {
        s.grants.retain(|g| g.expires_at > req.now);
        s.grants.push(Grant {
            challenge_id: c.id.clone(),
            application: c.application.clone(),
            binding: c.binding.clone(),
            event_key: c.event_key.clone(),
            policies: c.every_time.clone(),
            expires_at: req.now.plus(CHALLENGE_TTL_SECS),
            login: None,
        });
    }
    s.trim();
    d.effects.session = Some(s);
    d.effects.history = c.pending_history.clone();
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

    /// The id as documented, written from the documentation apart from [`IdHash`]: the stream
    /// of the set's hash, the tenant, application, user and session (each its length as a
    /// word, then its bytes, zero-padded to whole little-endian words), the sequence number and
    /// the time; each word into the two lanes; `ch_` and the digest's 16 hex digits.
    fn documented(hash: &SetHash, req: &Request, seq: u64) -> String {
        let mut words: Vec<u64> = Vec::new();
        for part in [
            hash.as_bytes(),
            req.tenant.as_bytes(),
            req.application.as_bytes(),
            req.user.as_bytes(),
            req.session.as_bytes(),
        ] {
            words.push(part.len() as u64);
            let mut padded = part.to_vec();
            padded.resize(part.len().div_ceil(8) * 8, 0);
            for chunk in padded.chunks(8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                words.push(u64::from_le_bytes(w));
            }
        }
        words.push(seq);
        words.push(req.now.0 as u64);
        let folded = |a: u64, b: u64| {
            let p = u128::from(a) * u128::from(b);
            (p as u64) ^ ((p >> 64) as u64)
        };
        let (mut spread, mut keep) = (ID_K[0], ID_K[2]);
        for w in words {
            spread = folded(spread ^ w, ID_K[1]);
            keep = (keep ^ w).wrapping_mul(ID_K[3]).rotate_left(29);
        }
        format!(
            "ch_{:016x}",
            folded(spread ^ keep ^ ID_K[2], ID_K[1]) ^ keep
        )
    }

    /// A name crafted to zero the spreading lane (whose state is public: the constants are)
    /// leaves two tenants' spreading lanes equal from there on; the keeping lane still tells
    /// their digests apart.
    #[test]
    fn a_name_that_zeroes_the_spreading_lane_does_not_make_two_tenants_ids_one() {
        let seed = IdSeed::new(&SetHash::from("0123456789abcdef0123456789abcdef"));
        let digest = |tenant: &[u8]| {
            let mut h = seed.0;
            h.part(tenant);
            h.part(b"");
            // The user: 8 bytes, the first word the lane's state after the length, so that
            // xoring it in zeroes it.
            let mut probe = h;
            probe.word(8);
            let user = probe.spread.to_le_bytes();
            h.part(&user);
            let zeroed = {
                let mut z = probe;
                z.word(u64::from_le_bytes(user));
                z.spread
            };
            h.part(b"s");
            h.word(1);
            h.word(1_800_000_000);
            (zeroed, h.spread, h.finish())
        };
        let (za, sa, da) = digest(b"acme");
        let (zb, sb, db) = digest(b"globex");
        assert_eq!(
            (za, zb),
            (0, 0),
            "the crafted names zero the spreading lane"
        );
        assert_eq!(sa, sb, "from there on the spreading lanes are one");
        assert_ne!(da, db, "the keeping lane tells the two apart");
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
                String::from_utf8_lossy(&hex8(w)),
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
