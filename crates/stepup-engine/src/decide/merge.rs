//! Step 3, merge: which fired policies the session already satisfies (computed once, with its
//! why), and the most restrictive requirement of the rest (SPEC §4 rules 3–5).

use std::sync::Arc;

use stepup_core::{Aal, FactorSet, Requirement, Validity};
use stepup_dsl::model::{Policy, Tenant};

use smallvec::SmallVec;

use crate::compile::CompiledScope;
use crate::decision::Names;
use crate::request::{Event, Request};
use crate::state::{AuthEvent, Binding, Grant, SessionState};

/// A fired policy, with the request attributes it reads (what an `every time` grant is bound
/// to) and whether the session satisfies it, and why.
pub(crate) struct Judged<'s> {
    /// Index into the scope's policies.
    pub index: usize,
    pub policy: &'s Policy,
    pub reads: &'s [Box<str>],
    pub satisfied: bool,
    pub why: &'static str,
}

/// The judged policies' list (four inline: a step-up's most common case allocates none).
pub(crate) type JudgedList<'s> = SmallVec<[Judged<'s>; 4]>;

/// The fired policies, judged.
pub(crate) struct Merge<'s, 'j> {
    /// In the order they fired.
    pub judged: &'j [Judged<'s>],
    /// The scope they were judged in.
    scope: &'s CompiledScope,
}

/// The merged requirement of the unsatisfied policies.
pub(crate) struct Merged {
    pub requirement: Requirement,
    /// No factor allowed by every policy reaches the AAL: unsatisfiable for everyone.
    pub conflict: bool,
    /// The allowed factors the user has enrolled.
    pub eligible: FactorSet,
}

impl<'s, 'j> Merge<'s, 'j> {
    /// Judges each fired policy against the session, in `judged`: the caller's list (one built
    /// here and returned would be copied, inline space and all, on every decision, even when
    /// nothing fired).
    pub(crate) fn judge(
        judged: &'j mut JudgedList<'s>,
        scope: &'s CompiledScope,
        req: &Request,
        session: &SessionState,
        fired: &[usize],
    ) -> Merge<'s, 'j> {
        judged.extend(fired.iter().filter_map(|&index| {
            let policy = &**scope.policies.get(index)?;
            let reads = &**scope.reads.get(index)?;
            let (satisfied, why) = satisfied(policy, reads, &scope.tenant, req, session);
            Some(Judged {
                index,
                policy,
                reads,
                satisfied,
                why,
            })
        }));
        Merge { judged, scope }
    }

    /// The names of the fired policies, sorted, shared.
    pub(crate) fn fired_names(&self) -> Names {
        self.names(|| self.judged.iter())
    }

    /// The names of the fired policies the session satisfied, sorted, shared.
    pub(crate) fn satisfied_names(&self) -> Names {
        self.names(|| self.satisfied())
    }

    /// The names of the unsatisfied policies, sorted, shared: `fired` (the list of
    /// [`Merge::fired_names`]) itself when no policy is satisfied.
    pub(crate) fn unsatisfied_names(&self, fired: &Names) -> Names {
        if self.satisfied().next().is_none() {
            return fired.clone();
        }
        self.names(|| self.judged.iter().filter(|j| !j.satisfied))
    }

    /// The names of the judged policies `it()` yields, sorted, shared: none is no list and one
    /// is the policy's own one-name list (no allocation), more a new list.
    fn names<'i, I: Iterator<Item = &'i Judged<'s>>>(&self, it: impl Fn() -> I) -> Names
    where
        's: 'i,
    {
        let mut judged = it();
        match (judged.next(), judged.next()) {
            (None, _) => Names::EMPTY,
            (Some(j), None) => self
                .scope
                .texts
                .get(j.index)
                .map_or_else(
                    || Arc::from([j.policy.name.clone()]),
                    |t| Arc::clone(&t.alone),
                )
                .into(),
            _ => shared_sorted_names(|| it().map(|j| j.policy)).into(),
        }
    }

    /// The message of a step-up to `aal`: that of the first unsatisfied policy requiring it.
    pub(crate) fn message(&self, aal: Aal) -> Arc<str> {
        self.judged
            .iter()
            .filter(|j| !j.satisfied)
            .find(|j| j.policy.requirement.aal == aal)
            .map_or_else(
                || stepup_dsl::model::DEFAULT_MESSAGE.into(),
                |j| {
                    self.scope.texts.get(j.index).map_or_else(
                        || j.policy.message_or_default().into(),
                        |t| Arc::clone(&t.message),
                    )
                },
            )
    }

    /// The fired policies the session satisfies.
    pub(crate) fn satisfied(&self) -> impl Iterator<Item = &Judged<'s>> {
        self.judged.iter().filter(|j| j.satisfied)
    }

    /// The fired policies it does not.
    pub(crate) fn unsatisfied(&self) -> impl Iterator<Item = &'s Policy> + '_ {
        self.judged
            .iter()
            .filter(|j| !j.satisfied)
            .map(|j| j.policy)
    }

    /// The most restrictive requirement of the unsatisfied policies: the highest AAL, the
    /// factors every one allows, the shortest validity.
    pub(crate) fn most_restrictive(&self, tenant: &Tenant, enrolled: FactorSet) -> Merged {
        let mut aal = Aal::Aal1;
        let mut factors = FactorSet::ANY;
        let mut validity = Validity::For(u64::MAX);
        for p in self.unsatisfied() {
            aal = aal.max(p.requirement.aal);
            factors = factors.intersect(p.requirement.factors);
            validity = validity.min(p.requirement.validity);
        }
        // The effective allowed factors: those allowed by every policy that can reach the AAL.
        let factors = factors.intersect(tenant.strengths.reaching(aal));
        Merged {
            requirement: Requirement {
                aal,
                factors,
                validity,
            },
            conflict: factors.is_empty(),
            eligible: factors.intersect(enrolled),
        }
    }
}

/// The values of the attributes `names` on this request (what a grant is bound to).
#[must_use]
pub(crate) fn binding(req: &Request, names: &[Box<str>]) -> Binding {
    if names.is_empty() {
        return Binding::new();
    }
    let mut b: Binding = names
        .iter()
        .map(|n| (n.to_string(), req.event.attr(n).cloned()))
        .collect();
    b.sort_by(|x, y| x.0.cmp(&y.0));
    b.dedup_by(|x, y| x.0 == y.0);
    b
}

/// Whether `g` is an `every time` grant for `p` on this very request: same application, same
/// operation, the same values of every attribute `p` reads, unexpired, earned by an
/// authentication that proves `p`'s requirement as it reads now (a reload may have made it
/// stricter). A value that is absent, or not of its declared type, is unknown: a grant bound to
/// it cannot say which request it was earned for (a payout without an amount), so it allows
/// nothing (SPEC §10).
pub(crate) fn grant_fits(
    g: &Grant,
    p: &Policy,
    reads: &[Box<str>],
    tenant: &Tenant,
    req: &Request,
    key: &str,
) -> bool {
    let r = p.requirement;
    g.application == req.application
        && *g.event_key == *key
        && req.now < g.expires_at
        && g.policies.contains(&p.name)
        && g.proof
            .is_some_and(|e| e.proves(r.aal, r.factors, &tenant.strengths))
        && reads.iter().all(|n| {
            let Some(value) = req
                .event
                .attr(n)
                .filter(|v| crate::facts::is_declared_type(tenant, n, v))
            else {
                return false;
            };
            g.binding
                .iter()
                .any(|(k, v)| k.as_str() == &**n && v.as_ref() == Some(value))
        })
}

/// Whether the session satisfies `p` for this event, and why (for explanations). `reads`: the
/// attributes `p` reads. A sign-in's own factors are an
/// authentication event of that sign-in (SPEC §10), and no grant allows a sign-in. A sign-in on
/// a session that is already established is proved by its own factors alone: it may be another
/// login's (an embedder that gives a user's logins one session id), and the session's
/// authentication events are the first login's. (Before the session is established, its events
/// can only be the sign-in's own: the HTTP layer's token, which it puts there.)
#[inline]
pub(crate) fn satisfied(
    p: &Policy,
    reads: &[Box<str>],
    tenant: &Tenant,
    req: &Request,
    session: &SessionState,
) -> (bool, &'static str) {
    let r = p.requirement;
    let sign_in = matches!(req.event, Event::SignIn { .. });
    match r.validity {
        Validity::EveryTime if sign_in => (
            false,
            "`every time` on a sign-in: no grant allows a sign-in, its step-up completes it",
        ),
        Validity::EveryTime => {
            let key = req.event.key();
            let ok = session
                .grants
                .iter()
                .any(|g| grant_fits(g, p, reads, tenant, req, &key));
            (
                ok,
                if ok {
                    "the step-up its challenge caused allows this one retry"
                } else {
                    "`every time`: needs a step-up for this very operation"
                },
            )
        }
        Validity::For(max_age) => {
            let mut proved = false;
            let own = match &req.event {
                Event::SignIn { factors, .. } => Some(AuthEvent {
                    at: req.now,
                    factors: *factors,
                    cap: None,
                    unnamed: false,
                }),
                _ => None,
            };
            // A sign-in on an established session: its own factors only (see above).
            let earlier = if sign_in && session.established {
                &[][..]
            } else {
                &session.events[..]
            };
            for e in earlier.iter().chain(own.as_ref()) {
                if !e.proves(r.aal, r.factors, &tenant.strengths) {
                    continue;
                }
                proved = true;
                if crate::state::auth_age(req.now, e.at).is_some_and(|age| age < max_age) {
                    return (true, "an authentication event proves it within max_age");
                }
            }
            (
                false,
                if proved {
                    "the proof is older than max_age"
                } else {
                    "no authentication event proves this AAL with an allowed factor"
                },
            )
        }
    }
}

/// Policy names, sorted.
/// The names of the policies `it()` yields, sorted, in one shared slice: one allocation for the
/// slice (the iterator is walked twice, once to count), shared by a challenge and its record.
pub(crate) fn shared_sorted_names<'p, I: Iterator<Item = &'p Policy>>(
    it: impl Fn() -> I,
) -> Arc<[String]> {
    let mut names: Arc<[String]> = std::iter::repeat_n(String::new(), it().count()).collect();
    match Arc::get_mut(&mut names) {
        Some(slots) => {
            for (slot, p) in slots.iter_mut().zip(it()) {
                slot.clone_from(&p.name);
            }
            slots.sort();
            names
        }
        None => sorted_names(it()).into(),
    }
}

pub(crate) fn sorted_names<'p>(it: impl Iterator<Item = &'p Policy>) -> Vec<String> {
    let mut v: Vec<String> = it.map(|p| p.name.clone()).collect();
    v.sort();
    v
}
