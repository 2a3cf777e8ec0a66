//! Sessions of services whose users carry access tokens (SPEC §10, §11).
//!
//! The token says how and when the user authenticated (`acr`, `amr`, `auth_time`); the history
//! store keeps the rest of the session, keyed by the token's `sid` (else, or when it is empty,
//! its `sub`) within the application (see `store_key`): whether it is established, the
//! challenges the layer issued, the `every time` grants their completion earned and the logins
//! it accepted. One request is decided in four steps on one loaded state, and committed once
//! with the store's compare-and-set (on a conflict everything is decided again on the fresh
//! state, so a challenge completes once and a grant is spent once across instances):
//!
//! 1. **Another login.** A session remembers the `auth_time` of the last few logins it accepted
//!    (whose sign-in was allowed, or whose authentication completed a challenge). A token
//!    that names no login of its own (no `sid`, an empty one, or one equal to the user id) is
//!    keyed by its user, so all of the user's logins share one session: in
//!    such a session, once established, a token of another login — or one without
//!    `auth_time`, which cannot be told from another — first has its own sign-in decided, with the request's context and
//!    its own factors. Until that is allowed, the token completes no challenge and changes
//!    nothing in the session (no challenge of its sign-in is kept, and the open challenges of
//!    the accepted logins stay open): tokens without `sid` share one session per user, and a
//!    login from another device or continent must not ride on, complete or cancel another's.
//!    A login that proves what its sign-in requires is allowed by that sign-in.
//! 2. **Completion.** A token whose `auth_time` is later than the latest open challenge's issue
//!    time (and than the `auth_time` of the login whose request issued it: the identity
//!    provider's clock may run ahead of ours by the leeway), made by an authentication that
//!    has completed no challenge yet, here or in another application (one authentication
//!    completes one challenge: `SessionState::completed`, and the login's record across
//!    applications under its session id), whose `acr` reaches its AAL and
//!    whose `amr` names one of its eligible factors completes it (the engine's `step_up`
//!    event): an `every time` challenge leaves a grant for the request that caused it. A sign-in's challenge is completed only while the session is
//!    not established (it is the session's pending sign-in), and its completion is the sign-in:
//!    the grant an `every time` sign-in policy would leave is spent by it. A token with a `sid`
//!    is always its own login's (the `sid` is the login), so its step-up tokens complete
//!    challenges without a second sign-in.
//! 3. **Sign-in.** A request of a session that is not established is its sign-in (every one
//!    until one is allowed or its challenge completed: a later request from a context no policy
//!    questions is allowed, the earlier challenge left open), decided with the request's
//!    context (client IP, device, GeoIP country and place): that is where the risk signals
//!    are computed. Later requests carry no context (SPEC §5).
//! 4. **The operation**, on the session as the steps before left it.
//!
//! What a session shared by logins (no `sid`) cannot tell apart: before it is established, a
//! second login's strong token completes the first login's pending sign-in challenge (the
//! pending sign-in's device and country are then learned only if this request comes from
//! them: the pending sign-in may be an attacker's, with a stolen password); once two
//! logins are both accepted, they share its challenges (a challenge supersedes the other
//! login's, and one's step-up completes the latest, which may be the other's: the grant it
//! leaves is then the completing login's, bound to the other's request, so nobody can spend it
//! and the user is asked again); and an `every time` sign-in policy cannot be completed by
//! another login of an established session (its sign-in is refused until it is allowed). A
//! `sid` per login avoids all three. In such a session a grant is spent only by the login that
//! earned it (`Grant::login`). A login is told by its token's `auth_time`, in seconds: two
//! logins of one user that authenticated in the same second are taken for one (the second's
//! sign-in is not decided, and it may spend the first's grant).
//!
//! A token without a usable `amr` (absent, or only values that name no factor) proves the AAL
//! its `acr` asserts to policies that allow `factor any`, and nothing else: it satisfies them
//! within their `max_age`, and completes a challenge all of whose policies allow `factor any`
//! (its audit record then names no factor, and an `every time` grant it leaves proves that AAL
//! to `factor any` policies only). Its authentication event names no factor, capped at that
//! AAL, and the engine reads it so ([`AuthEvent::proves`]): the state a decision log
//! keeps is the one decided on, so a backtest whose candidate rules name factors reads the
//! token as proving none of them.

use stepup_core::{Aal, Factor, FactorSet, StrengthTable, Timestamp};
use stepup_engine::UserHistory;
use stepup_engine::contract::{ClaimMapping, Claims};
use stepup_engine::engine::MAX_COMMIT_ATTEMPTS;
use stepup_engine::state::{AuthEvent, Challenge, ChallengeState, Grant, HistoryUpdate};
use stepup_engine::{
    CompiledSet, Context, Decision, DecisionKind, Event, Request, State, Store, StoreError,
};

/// What a token proves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proof {
    /// Its authentication event (`None` without `auth_time`).
    event: Option<AuthEvent>,
    /// A token without a usable `amr`: when it authenticated and the AAL its `acr` asserts.
    acr_only: Option<(Timestamp, Aal)>,
}

impl Proof {
    pub(crate) fn new(c: &Claims, mapping: &ClaimMapping, strengths: &StrengthTable) -> Self {
        let mut event = mapping.event(c, strengths);
        let asserted = c.acr.as_deref().and_then(|a| mapping.aal(a));
        let acr_only = match (event, asserted) {
            (Some(e), Some(aal)) if e.factors.is_empty() => Some((e.at, aal)),
            _ => None,
        };
        if let Some(e) = &mut event {
            // No factor named, and an AAL asserted: it proves that AAL to `factor any` policies.
            // (Neither: it proves nothing.)
            e.unnamed = acr_only.is_some();
        }
        Proof { event, acr_only }
    }

    fn events(&self) -> Vec<AuthEvent> {
        self.event.into_iter().collect()
    }

    /// Whether this token is a new authentication answering `c` (made after `c` was issued,
    /// before it expired, and not yet used), whether or not it meets it.
    fn answers(&self, c: &Challenge, used: &stepup_engine::SessionState, now: Timestamp) -> bool {
        self.event.is_some_and(|e| {
            e.at > c.issued_at
                && c.login.is_none_or(|issuer| e.at > issuer)
                && !used.used(e.at)
                && e.at < c.expires_at
                && now < c.expires_at
                && c.state == ChallengeState::Open
        })
    }

    /// How this token completes `c`, if it does: authenticated after `c` was issued and before
    /// it expired, by an authentication that has completed none of the session's challenges
    /// (`used`: one authentication completes one challenge), at `c`'s AAL or above, with a factor `c` accepts — the strongest, named in
    /// the audit record. A token without a usable `amr` completes a challenge whose policies
    /// all allow `factor any` with its `acr` alone (`any_factor`: the record names no factor).
    fn completes(
        &self,
        c: &Challenge,
        used: &stepup_engine::SessionState,
        now: Timestamp,
        any_factor: impl Fn(&Challenge) -> bool,
    ) -> Option<(Factor, bool)> {
        let e = self.event?;
        // Later than the challenge by our clock, and than the login that caused it by the
        // identity provider's: a token of that login, its `auth_time` ahead of our clock by a
        // skew the leeway accepts, proves no new authentication.
        let strong = e.cap.unwrap_or(Aal::Aal1) >= c.requirement.aal;
        if !self.answers(c, used, now) || !strong {
            return None;
        }
        // Factors are ordered weakest first.
        if let Some(f) = e.factors.intersect(c.eligible).iter().last() {
            return Some((f, true));
        }
        if self.acr_only.is_some() && any_factor(c) {
            // The engine completes with an eligible factor; the token named none.
            return c.eligible.iter().next().map(|f| (f, false));
        }
        None
    }
}

/// The fields of `b` where it has them, else those of `a`.
fn merge(a: Option<HistoryUpdate>, b: Option<HistoryUpdate>) -> Option<HistoryUpdate> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(HistoryUpdate {
            device: b.device.or(a.device),
            country: b.country.or(a.country),
            last_sign_in: b.last_sign_in.or(a.last_sign_in),
            access: b.access.or(a.access),
        }),
    }
}

/// The challenge a token answers: the latest open one, a sign-in's only while the session is
/// not established (it is then the session's pending sign-in).
fn latest_open(state: &State) -> Option<&Challenge> {
    let established = state.session.established;
    state
        .session
        .challenges
        .iter()
        .rev()
        .find(|c| c.state == ChallengeState::Open && !(c.sign_in && established))
}

/// Whether every policy of challenge `c` allows `factor any` (then a token's `acr` alone
/// completes it). One rule for the completion and for the failed attempt: the failed attempt
/// judged without it, and an `acr`-only completion was audited failed as well.
fn any_factor(set: &CompiledSet, op: &Request, c: &Challenge) -> bool {
    set.model
        .resolve(&op.tenant, &c.application)
        .is_ok_and(|r| {
            c.policies.iter().all(|name| {
                r.policies
                    .iter()
                    .find(|p| &p.name == name)
                    .is_some_and(|p| p.requirement.factors == FactorSet::ANY)
            })
        })
}

/// The `auth.step_up_failed` record of a token that answers the latest open challenge (a new
/// authentication, made after it was issued) but does not meet it: too weak an `acr`, or no
/// factor it accepts (SPEC §4.7: anything but a completion is a failure, and the session gains
/// nothing). Without it the audit stream showed a new challenge and no failed attempt (a
/// token whose `otp` may be an SMS code, answering an aal3 key-or-app challenge).
fn failed_attempt(
    set: &CompiledSet,
    op: &Request,
    proof: &Proof,
    state: &State,
) -> Option<stepup_engine::AuditRecord> {
    let c = latest_open(state)?;
    let e = proof.event?;
    if !proof.answers(c, &state.session, op.now)
        || proof
            .completes(c, &state.session, op.now, |c| any_factor(set, op, c))
            .is_some()
    {
        return None;
    }
    let cap = e.cap.unwrap_or(Aal::Aal1);
    let why = if cap < c.requirement.aal {
        format!(
            "the token's authentication proves at most {cap}; the challenge asks {}",
            c.requirement.aal
        )
    } else {
        format!(
            "the token's authentication names none of the factors the challenge accepts ({})",
            c.eligible
        )
    };
    Some(stepup_engine::AuditRecord {
        name: stepup_engine::decision::audit_names::FAILED,
        at: op.now,
        tenant: op.tenant.clone(),
        application: op.application.clone(),
        user: op.user.clone(),
        session: op.session.clone(),
        event: std::sync::Arc::from("step_up"),
        challenge_id: Some(c.id.clone()),
        policies: c.policies.clone(),
        required_aal: Some(c.requirement.aal),
        factor: e.factors.iter().last(),
        risk: None,
        message: Some(std::sync::Arc::clone(&c.message)),
        errors: vec![why],
        policy_set: set.hash(),
        would_be: None,
    })
}

/// The completion of the latest open challenge by the token, if it proves it (the engine's
/// `step_up` event); a sign-in's challenge only while the session is not established (it is
/// then the session's pending sign-in). A token without a usable `amr` completes a challenge
/// all of whose policies allow `factor any`, and its audit record names no factor.
fn completion(
    set: &CompiledSet,
    op: &Request,
    proof: &Proof,
    state: &State,
    per_user: bool,
    sign_in: &dyn Fn() -> Context,
) -> Option<(Request, Decision)> {
    let challenge = latest_open(state)?;
    let (factor, named) = proof.completes(challenge, &state.session, op.now, |c| {
        any_factor(set, op, c)
    })?;
    let req = Request {
        event: Event::StepUp {
            factor,
            success: true,
        },
        ..op.clone()
    };
    let mut c = set.decide(&req, state, false);
    if c.kind != DecisionKind::Completed {
        return None;
    }
    if per_user
        && challenge.sign_in
        && let Some(h) = &c.effects.history
    {
        // In a session shared by logins, the pending sign-in may be another login's (an
        // attacker's, with a stolen password): completing it with this token proves this user,
        // not that sign-in's device and place. They are learned only when this request comes
        // from them; else the history learns nothing (a sign-in from there is asked again).
        let here = sign_in();
        let same_place = h.device == here.device
            && h.country.as_ref().map(|(country, _)| country.as_str())
                == here.country_code().map(str::to_ascii_uppercase).as_deref()
            && h.last_sign_in.as_ref().map(|l| l.location) == Some(here.location);
        if !same_place {
            c.effects.history = None;
        }
    }
    if challenge.sign_in
        && let Some(s) = &mut c.effects.session
    {
        // The completion is the sign-in (step 3 is then not decided): the grant an `every
        // time` sign-in policy leaves is spent by it, not left for another login's sign-in.
        s.grants.retain(|g| g.challenge_id != challenge.id);
    }
    if let Some(s) = &mut c.effects.session {
        // The grants this completion added (an id is a 64-bit hash, so a grant already in the
        // session that names the same id, a coincidence, never a guarantee, is left as it is):
        // - in a session shared by logins, each is the completing login's to spend: the
        //   challenge may have been another login's (the latest open one is completed);
        // - completed by a token that named no factor, each names none either: the engine
        //   completed with an eligible one, but the token proved its `acr` alone, so the grant
        //   proves that AAL to `factor any` policies only (a reload that names factors asks
        //   the retry again).
        let login = proof.event.map(|e| e.at);
        let before = &state.session.grants;
        for g in s
            .grants
            .iter_mut()
            .filter(|g| g.challenge_id == challenge.id && !before.contains(g))
        {
            if per_user {
                g.login = login;
            }
            if !named && let Some(p) = &mut g.proof {
                p.factors = FactorSet::EMPTY;
                p.unnamed = true;
            }
        }
        // This authentication has completed a challenge: it completes no other, whichever
        // path (the session's own login, or another login of a shared session) it took.
        if let Some(e) = proof.event {
            s.use_auth(e.at, op.now);
        }
    }
    if !named {
        for r in &mut c.audit {
            r.factor = None;
        }
    }
    Some((req, c))
}

/// How long a request waits, after each look, for a request that recorded its authentication
/// to save its session (on loopback Redis a commit takes about a millisecond): 80 ms in all.
const OVERTAKE_WAITS_MS: [u64; 4] = [2, 8, 20, 50];

/// Whether session `key`, loaded at `version`, is saved at another version: looked at once at
/// once, then after each of [`OVERTAKE_WAITS_MS`] (`may_sleep`), or after yielding the thread
/// as often (an async worker, deciding on an in-memory store, never sleeps: there the other
/// request's commit is in memory). A look that fails ends the waiting. Asked only before
/// saving a step-up decided after the request's authentication was found recorded as used
/// by another request: a double submit, or a token used in another application, which this
/// session never sees move (its wait is once per challenge the token is fresh for: the
/// step-up saved after it closes that challenge; an identity provider's clock ahead of ours
/// makes a later challenge of the login one the token is fresh for again).
fn session_moved(
    store: &dyn Store,
    op: &Request,
    key: &str,
    version: u64,
    may_sleep: bool,
) -> bool {
    let moved = || match store.load(&op.tenant, &op.user, key) {
        Ok((_, s)) => Some(s.version != version),
        Err(_) => None,
    };
    match moved() {
        Some(false) => {}
        Some(true) => return true,
        None => return false,
    }
    for ms in OVERTAKE_WAITS_MS {
        if may_sleep {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        } else {
            std::thread::yield_now();
        }
        match moved() {
            Some(false) => {}
            Some(true) => return true,
            None => return false,
        }
    }
    false
}

/// The refusal of a decision whose effects could not be saved (SPEC §10: what spends a grant,
/// completes a challenge or establishes a session allows only once saved): the store's error,
/// after the records of what was decided.
fn refused_unsaved(
    set: &CompiledSet,
    op: &Request,
    history: Option<&UserHistory>,
    d: &mut Decision,
    e: &StoreError,
) -> Decision {
    let note = unsaved(d, e);
    let mut refused = set.refuse_for_store(op, history, note);
    let mut audit = std::mem::take(&mut d.audit);
    audit.append(&mut refused.audit);
    refused.audit = audit;
    refused
}

/// Marks what `d` decided as not saved (the store's error `e`): the note in its errors and in
/// each record, and a completion it made or took in is a failed step-up (as `Engine::process`
/// records it), not a completed one (a review found `auth.step_up_completed` in the audit
/// stream of a request refused with 503). Returns the note.
fn unsaved(d: &mut Decision, e: &StoreError) -> String {
    let note = format!("{e}{}", stepup_engine::engine::NOTHING_SAVED);
    d.errors.push(note.clone());
    for r in &mut d.audit {
        if r.name == stepup_engine::decision::audit_names::COMPLETED {
            r.name = stepup_engine::decision::audit_names::FAILED;
        }
        r.errors.push(note.clone());
    }
    note
}

/// The key the store keeps the request's session under: its session's, within its
/// application. A session id (`sid`, or the user for tokens without one) names the identity
/// provider's login, which every application of the tenant sees: one application's allowed
/// sign-in must not establish the session of another, whose sign-in policies may ask more.
/// Every key, a tenant's own policies' (no application) included, starts with the
/// application's length: no two (application, session) pairs give one key (a `sid` of
/// `6:portal:s` without an application was portal's session `s`, established by its sign-in).
/// The login's record across applications is kept under the session id itself.
fn store_key(op: &Request) -> String {
    format!("{}:{}:{}", op.application.len(), op.application, op.session)
}

/// What a decision log records of a decision: the request and the state it was decided on
/// (`None`: the store could not be read, or what was decided could not be saved).
pub(crate) type Logged = Option<(Request, Option<State>)>;

/// The decisions a request made before the one it returns, for the decision log: a challenge
/// its token completed and a sign-in allowed on its way to the operation (each with the state
/// it was decided on).
pub(crate) type Earlier = Vec<(Request, State, Decision)>;

/// Decides the operation `op` of a token's session (see the module's documentation) and
/// commits its effects. `per_user`: the token names no login of its own, so the session is the
/// user's, shared by all of their logins. `sign_in` gives the request's context, asked only for a sign-in. The
/// decision's audit records are those of every step, in order. With
/// `log`, also returns the request and state the returned decision was made on, for the
/// decision log.
#[expect(
    clippy::too_many_arguments,
    reason = "the set, the store, the token's claims and how they map, the request, whether its session is the user's, its context, the log, whether the thread may sleep"
)]
pub(crate) fn decide(
    set: &CompiledSet,
    store: &dyn Store,
    mapping: &ClaimMapping,
    claims: &Claims,
    op: &Request,
    per_user: bool,
    sign_in: &dyn Fn() -> Context,
    log: bool,
    may_sleep: bool,
) -> (Decision, Logged, Earlier) {
    let strengths = set
        .model
        .tenants
        .get(&*op.tenant)
        .map(|t| t.strengths)
        .unwrap_or_default();
    let proof = Proof::new(claims, mapping, &strengths);
    let key = store_key(op);
    // The login's record across applications (under its session id): the authentication that
    // completed a challenge in any application (a tenant's own policies included) completes no
    // other (a token several applications accept, its `auth_time` ahead of our clock, must not
    // pay in each). Read only when a completion is about to happen, and committed before it.
    let across: &str = &op.session;
    // Whether this request wrote its authentication into that record (before a conflict on the
    // session's commit made it decide again).
    let mut recorded = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (history, stored) = match store.load(&op.tenant, &op.user, &key) {
            Ok(x) => x,
            Err(e) => {
                let d = set.refuse_for_store(op, None, e.to_string());
                return (d, log.then(|| (op.clone(), None)), Vec::new());
            }
        };
        let loaded_version = stored.version;
        let mut state = State {
            history: Ok(history),
            session: stored,
        };
        state.session.events = proof.events();
        let mut audit = Vec::new();
        // A token answering the latest challenge without meeting it: its failure first (not
        // for another login of a shared session, whose own sign-in is decided first).
        let another = per_user
            && state.session.established
            && proof.event.is_none_or(|e| !state.session.accepted(e.at));
        if !another && let Some(r) = failed_attempt(set, op, &proof, &state) {
            audit.push(r);
        }
        let mut update = None;
        let mut changed = false;
        // The login this token is (when it says when it authenticated), accepted once its
        // sign-in is allowed or its authentication completes a challenge.
        let login_at = proof.event.map(|e| e.at);
        let mut accepted = false;
        let accept = |state: &mut State| login_at.is_some_and(|at| state.session.accept(at));
        let mut absorb = |state: &mut State, d: &mut Decision| {
            if let Some(mut s) = d.effects.session.take() {
                s.events = proof.events();
                state.session = s;
                changed = true;
            }
            if let Some(h) = d.effects.history.take() {
                if let Ok(hist) = &mut state.history {
                    h.apply(hist);
                }
                update = merge(update.take(), Some(*h));
            }
            audit.append(&mut d.audit);
        };

        let mut d = None;
        let mut decided_on = None;
        let mut earlier: Earlier = Vec::new();
        // The login's record across applications, when this request completes a challenge.
        let mut record: Option<stepup_engine::state::SessionState> = None;
        // A completion stands only if this authentication completed no challenge in another
        // application (an unreadable record: it may have, so it does not stand).
        // Whether this authentication was found recorded as used by another request.
        let used_elsewhere = std::cell::Cell::new(false);
        let mut first_use = |c: Decision| -> Option<Decision> {
            let (_, r) = store.load(&op.tenant, &op.user, across).ok()?;
            // Used already, unless by this request: its record was written, then the session's
            // commit conflicted and it is decided again.
            let used = login_at.is_none_or(|at| r.used(at));
            if used && !(recorded && login_at.is_some()) {
                used_elsewhere.set(true);
                return None;
            }
            record = Some(r);
            Some(c)
        };
        // 1. In an established session keyed by the user (`per_user`: the token names no login
        // of its own, so all of the user's logins share it), another login — a token whose
        // `auth_time` the session has not accepted, or that has none — has its own sign-in
        // decided first, with the request's context. Until that is allowed it completes no
        // challenge and changes nothing in the session: no challenge of its sign-in is kept (a
        // later token cannot complete it for another login), and the open challenges of the
        // accepted logins stay open. 2. Any other token first completes the latest open
        // challenge it proves; 3. then, if the session is still not established, this is its
        // sign-in.
        let new_login = login_at.is_none_or(|at| !state.session.accepted(at));
        let another_login = per_user && state.session.established && new_login;
        if !another_login
            && let Some((req, mut c)) = completion(set, op, &proof, &state, per_user, sign_in)
                .and_then(|(req, c)| first_use(c).map(|c| (req, c)))
        {
            if log {
                earlier.push((req, state.clone(), c.clone()));
            }
            absorb(&mut state, &mut c);
            accepted |= accept(&mut state);
        }
        if another_login || !state.session.established {
            let req = Request {
                event: Event::SignIn {
                    context: sign_in(),
                    factors: FactorSet::EMPTY,
                },
                ..op.clone()
            };
            // Another login's sign-in is decided as the first sign-in of its own login: in a
            // session not yet established, proved by its token (the session's events, put there
            // above), not refused its proof as a sign-in on an established session is (the
            // engine cannot tell whose that would be; here the token says).
            let (mut s, st) = if another_login {
                let mut own = state.clone();
                own.session.established = false;
                (set.decide(&req, &own, false), Some(own))
            } else {
                (set.decide(&req, &state, false), None)
            };
            if s.kind == DecisionKind::Allow {
                if log {
                    // A decision of its own (SPEC §12: one line per decision), logged when
                    // what the request decided is saved.
                    let on = st.clone().unwrap_or_else(|| state.clone());
                    earlier.push((req.clone(), on, s.clone()));
                }
                absorb(&mut state, &mut s);
                accepted |= accept(&mut state);
            } else {
                if another_login {
                    s.effects.session = None;
                    s.effects.history = None;
                }
                if log {
                    decided_on = Some((req, st.unwrap_or_else(|| state.clone())));
                }
                d = Some(s);
            }
        }
        // 2, for another login whose sign-in was allowed.
        if another_login
            && d.is_none()
            && let Some((req, mut c)) = completion(set, op, &proof, &state, per_user, sign_in)
                .and_then(|(req, c)| first_use(c).map(|c| (req, c)))
        {
            if log {
                earlier.push((req, state.clone(), c.clone()));
            }
            absorb(&mut state, &mut c);
            accepted |= accept(&mut state);
        }

        // 4. The operation. In a session shared by logins, the grants another login earned are
        // not this token's to spend: they are set aside while it is decided, and kept.
        let others: Vec<Grant> = if per_user && d.is_none() {
            let (mine, others) = std::mem::take(&mut state.session.grants)
                .into_iter()
                .partition(|g| g.login.is_none_or(|l| Some(l) == login_at));
            state.session.grants = mine;
            others
        } else {
            Vec::new()
        };
        let mut d = d.unwrap_or_else(|| {
            let d = set.decide(op, &state, false);
            if log {
                decided_on = Some((op.clone(), state.clone()));
            }
            d
        });
        let logged = decided_on.map(|(req, st)| (req, Some(st)));
        let mut session = d.effects.session.take();
        if session.is_none() && (changed || accepted) {
            session = Some(state.session.clone());
        }
        if let Some(s) = &mut session {
            s.grants.extend(others);
            // The token is the proof of authentication: the store keeps no events.
            s.events.clear();
            // A challenge this request issued (the latest) remembers when its login
            // authenticated: only a later authentication completes it.
            if d.kind == DecisionKind::StepUp
                && let Some(c) = s.challenges.last_mut()
                && d.challenge_id.as_ref() == Some(&c.id)
            {
                c.login = login_at;
            }
        }
        let update = merge(update, d.effects.history.take().map(|h| *h));
        audit.append(&mut d.audit);
        d.audit = audit;
        if session.is_none() && update.is_none() {
            return (d, logged, earlier);
        }
        // Another request may be completing with this authentication right now (a client's
        // double submit: the same retry twice, on one instance or two): it wrote the record and
        // is about to save the session. Saving this step-up (it supersedes the challenge that
        // request completes) would make that commit conflict and find its challenge closed:
        // neither request allowed (a fleet review saw 5 such in 40 double submits). So this
        // one waits a moment for that commit and decides again on it. Best effort: a commit
        // later than the waits, or past the attempts, leaves it as it was.
        if used_elsewhere.get()
            && d.kind == DecisionKind::StepUp
            && session.is_some()
            && attempt < MAX_COMMIT_ATTEMPTS
            && session_moved(store, op, &key, loaded_version, may_sleep)
        {
            continue;
        }
        if let Some(mut r) = record.take() {
            // The authentication is recorded as used before its completion is saved: if the
            // completion is then not saved, the user steps up again (never twice with one).
            if let Some(at) = login_at {
                r.use_auth(at, op.now);
            }
            match store.commit(&op.tenant, &op.user, across, Some(&r), None) {
                Ok(()) => recorded = true,
                Err(StoreError::Conflict { .. }) if attempt < MAX_COMMIT_ATTEMPTS => continue,
                Err(e) => {
                    return (
                        refused_unsaved(set, op, state.history.as_ref().ok(), &mut d, &e),
                        log.then(|| (op.clone(), None)),
                        Vec::new(),
                    );
                }
            }
        }
        match store.commit(
            &op.tenant,
            &op.user,
            &key,
            session.as_ref(),
            update.as_ref(),
        ) {
            Ok(()) => return (d, logged, earlier),
            Err(StoreError::Conflict { .. }) if attempt < MAX_COMMIT_ATTEMPTS => {
                // Another instance decided on this session first: decide again on its state.
            }
            Err(e) => {
                if session.is_some() && (d.succeeded() || d.kind == DecisionKind::StepUp) {
                    // An allow that spends a grant, completes a challenge or establishes the
                    // session is an allow only if that was saved (SPEC §10). A step-up whose
                    // challenge was not saved asks for what no answer can complete (and a
                    // completion it took in was not saved either, a review found it audited
                    // as completed): refused too, the service's store unavailable.
                    let refused = refused_unsaved(set, op, state.history.as_ref().ok(), &mut d, &e);
                    return (refused, log.then(|| (op.clone(), None)), Vec::new());
                }
                unsaved(&mut d, &e);
                return (d, logged, Vec::new());
            }
        }
    }
}
