//! The embedding API: a compiled policy set behind an atomic pointer (readers never block,
//! reloads swap in whole), decisions with the clock passed in, and the load–decide–commit cycle
//! against a store.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use stepup_dsl::PolicySet;

use crate::compile::{CompiledScope, compile_tenant};
use crate::decide::{IdSeed, Record, Walk};
use crate::decision::{Decision, DecisionKind, SetHash, audit_names};
use crate::names::NameMap;
use crate::request::Request;
use crate::risk::{FeedWarnings, ThreatFeed};
use crate::state::State;
use crate::store::{Store, StoreError};

/// Why a policy set could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The rules have errors. The load is kept whole: every diagnostic (errors and warnings,
    /// spanned in the files as read), to render or to show one by one.
    #[error(
        "the rules have {} error(s):\n{}",
        .0.error_count(),
        stepup_dsl::diag::render_all(&.0.diagnostics, false)
    )]
    Rules(Box<stepup_dsl::Loaded>),
    /// The rules cannot be read (a missing or unreadable file or directory).
    #[error("{0}")]
    Io(String),
    /// A (tenant, application) scope of a checked set cannot be resolved.
    #[error("{0}")]
    Scope(String),
    /// The set's hash is longer than a decision holds ([`SetHash::MAX`] bytes; the loader's
    /// is 32 hex digits): cut, two sets could read the same in records.
    #[error("{0}")]
    Hash(String),
}

impl LoadError {
    /// The diagnostics of rules with errors (none for the other kinds).
    #[must_use]
    pub fn diagnostics(&self) -> &[stepup_dsl::Diagnostic] {
        match self {
            LoadError::Rules(l) => &l.diagnostics,
            LoadError::Io(_) | LoadError::Scope(_) | LoadError::Hash(_) => &[],
        }
    }
}

struct TenantScopes {
    base: CompiledScope,
    /// `None`: the application changes none of the tenant's policies, and decides with the
    /// tenant's scope (compiled once).
    apps: NameMap<Option<CompiledScope>>,
    feed: Arc<ThreatFeed>,
}

/// A checked policy set, compiled for every (tenant, application).
pub struct CompiledSet {
    /// The checked model.
    pub model: Arc<PolicySet>,
    tenants: NameMap<TenantScopes>,
    hash: SetHash,
    /// The challenge ids' hasher, the set's hash already written.
    ids: IdSeed,
    /// Malformed threat-feed lines (skipped), as the checker found them.
    pub feed_warnings: FeedWarnings,
    history_window_secs: u64,
}

impl std::fmt::Debug for CompiledSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSet")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl CompiledSet {
    /// The refusal of `req` because the history store failed (SPEC §10: deny, reason
    /// `store_unavailable`), its audit record carrying the event's risk score and signals where
    /// the request's tenant is known (`history`: what the store gave before it failed, if it
    /// gave anything).
    #[must_use]
    pub fn refuse_for_store(
        &self,
        req: &Request,
        history: Option<&crate::state::UserHistory>,
        error: String,
    ) -> Decision {
        crate::decide::refused_for_store(self, req, history, error)
    }

    /// Compiles a checked set. Its threat feeds were loaded when it was checked (a missing
    /// blocklist is an error of the rules): each tenant's merged feed is in its model.
    ///
    /// # Errors
    /// When a scope of the set cannot be resolved.
    pub fn compile(model: PolicySet) -> Result<CompiledSet, LoadError> {
        Self::compile_on(model, stepup_core::threads::PARALLEL_FROM_POLICIES)
    }

    /// [`CompiledSet::compile`], the tenants compiled on several threads from `parallel_from`
    /// policies.
    fn compile_on(model: PolicySet, parallel_from: usize) -> Result<CompiledSet, LoadError> {
        if model.hash.len() > SetHash::MAX {
            let shown: String = model.hash.chars().take(40).collect();
            return Err(LoadError::Hash(format!(
                "the policy set's hash `{shown}` has {} bytes; a decision holds at most {} \
                 (the hash the loader computes is 32 hex digits)",
                model.hash.len(),
                SetHash::MAX
            )));
        }
        let scope_error = |e: stepup_dsl::model::ResolveError| LoadError::Scope(e.to_string());
        // One tenant's scopes: the tenant alone first, then its applications, compiled together
        // so that the policies they share are lowered once.
        let compile_one = |(name, t): &(&String, &stepup_dsl::model::Tenant)| {
            // In this crate's tests only: a tenant named `…compile_panics…` panics here, to
            // check a bug is a load error, never a tenant left out (its events unguarded).
            #[cfg(test)]
            assert!(
                !name.contains("compile_panics"),
                "a panic on purpose: the test checks it is contained"
            );
            let apps: Vec<&String> = model
                .applications
                .keys()
                .filter(|(tn, _)| tn == *name)
                .map(|(_, a)| a)
                .collect();
            let mut resolved = vec![model.resolve(name, "").map_err(scope_error)?];
            for a in &apps {
                resolved.push(model.resolve(name, a).map_err(scope_error)?);
            }
            let mut scopes = compile_tenant(&resolved).into_iter();
            let base = scopes
                .next()
                .flatten()
                .ok_or_else(|| LoadError::Scope(format!("tenant `{name}` did not compile")))?;
            Ok(TenantScopes {
                base,
                apps: apps.into_iter().cloned().zip(scopes).collect(),
                feed: Arc::clone(&t.risk.feed),
            })
        };
        let all: Vec<(&String, &stepup_dsl::model::Tenant)> = model.tenants.iter().collect();
        let policies: usize = all.iter().map(|(_, t)| t.policies.len()).sum();
        let compiled =
            stepup_core::threads::map_contained(&all, policies >= parallel_from, compile_one);
        let mut tenants = NameMap::default();
        let mut feed_warnings = FeedWarnings::default();
        for ((name, t), scopes) in all.iter().zip(compiled) {
            feed_warnings.extend(&t.risk.feed_warnings);
            let scopes = scopes.ok_or_else(|| {
                LoadError::Scope(format!(
                    "tenant `{name}` did not compile (a bug in stepup: please report it)"
                ))
            })??;
            tenants.insert((*name).clone(), scopes);
        }
        let hash = SetHash::from(model.hash.as_str());
        let history_window_secs = history_window_secs(&model);
        Ok(CompiledSet {
            model: Arc::new(model),
            tenants,
            hash,
            ids: IdSeed::new(&hash),
            feed_warnings,
            history_window_secs,
        })
    }

    /// Loads, checks and compiles the `.policy` files under `paths`.
    ///
    /// # Errors
    /// Unreadable paths, paths holding no `.policy` file, rules with errors, unreadable feeds.
    pub fn load(paths: &[PathBuf]) -> Result<CompiledSet, LoadError> {
        let loaded = stepup_dsl::load_paths(paths).map_err(LoadError::Io)?;
        if loaded.files.is_empty() {
            // A directory of no rules (a wrong path, an empty checkout) is a mistake to say,
            // not a set that knows no tenant: a service would refuse every request, a backtest
            // report every decision changed, a replay every scenario's tenant unknown.
            return Err(LoadError::Io(stepup_dsl::no_policy_files(paths)));
        }
        Self::from_loaded(loaded)
    }

    /// Compiles policy text (one file).
    ///
    /// # Errors
    /// As [`CompiledSet::load`].
    pub fn from_text(name: &str, text: &str) -> Result<CompiledSet, LoadError> {
        Self::from_loaded(stepup_dsl::load_sources(&[stepup_dsl::Source::text(
            name, text,
        )]))
    }

    /// Compiles what [`stepup_dsl::load_sources`] or [`stepup_dsl::load_paths`] loaded: the one
    /// load pipeline of the CLI, the studio and services' reloads.
    ///
    /// # Errors
    /// [`LoadError::Rules`] with the load's diagnostics when a file has an error.
    pub fn from_loaded(loaded: stepup_dsl::Loaded) -> Result<CompiledSet, LoadError> {
        match loaded.set {
            Some(set) => Self::compile(set),
            None => Err(LoadError::Rules(Box::new(loaded))),
        }
    }

    /// How far back the policies read a user's history: the longest window of any signal or
    /// first access, and at least 90 days (the default new-country window). History older than
    /// this may expire from a store.
    #[must_use]
    pub fn history_window_secs(&self) -> u64 {
        self.history_window_secs
    }

    /// How many policies the set has: its tenants' and its applications'.
    #[must_use]
    pub fn policy_count(&self) -> usize {
        let tenants: usize = self.model.tenants.values().map(|t| t.policies.len()).sum();
        let apps: usize = self
            .model
            .applications
            .values()
            .map(|a| a.policies.len())
            .sum();
        tenants + apps
    }

    /// The policy set's hash.
    #[must_use]
    pub fn hash(&self) -> SetHash {
        self.hash
    }

    /// The challenge ids' hasher of this set.
    pub(crate) fn id_seed(&self) -> &IdSeed {
        &self.ids
    }

    pub(crate) fn scope(
        &self,
        tenant: &str,
        app: &str,
    ) -> Result<(&CompiledScope, &ThreatFeed), String> {
        let t = self.tenants.get(tenant).ok_or_else(|| {
            format!(
                "tenant `{}` is not defined by the rules",
                crate::names::shown(tenant)
            )
        })?;
        let scope = if app.is_empty() {
            &t.base
        } else {
            t.apps
                .get(app)
                .ok_or_else(|| {
                    format!(
                        "application `{}` of tenant `{}` is not defined by the rules",
                        crate::names::shown(app),
                        crate::names::shown(tenant)
                    )
                })?
                .as_ref()
                .unwrap_or(&t.base)
        };
        Ok((scope, &t.feed))
    }

    /// Decides with the compiled tree; with `explain`, the decision is made by the traced walk
    /// and carries its record (see [`Record`]).
    #[must_use]
    pub fn decide(&self, req: &Request, state: &State, explain: bool) -> Decision {
        let record = if explain {
            Record::Explanation
        } else {
            Record::Decision
        };
        self.decide_with(req, state, record)
    }

    /// Decides, recording what `record` asks for.
    #[must_use]
    pub fn decide_with(&self, req: &Request, state: &State, record: Record) -> Decision {
        crate::decide::decide(self, req, state, record, Walk::Compiled)
    }

    /// Decides with the reference interpreter in place of the tree walk: the oracle the tests
    /// and benchmarks compare the compiler with. Never use it to serve decisions.
    #[must_use]
    pub fn decide_reference(&self, req: &Request, state: &State) -> Decision {
        crate::decide::decide(self, req, state, Record::Decision, Walk::Reference)
    }
}

/// The longest history window the policies of `model` read, in seconds (at least 90 days).
fn history_window_secs(model: &PolicySet) -> u64 {
    use stepup_dsl::model::Cond;
    let mut days: u64 = 90;
    let tenants = model.tenants.values().flat_map(|t| t.policies.iter());
    let applications = model.applications.values().flat_map(|a| a.policies.iter());
    for p in tenants.chain(applications) {
        p.condition.for_each_leaf(&mut |c| match c {
            Cond::Signal(_, d) | Cond::FirstAccess(_, Some(d)) => {
                days = days.max(u64::from(*d));
            }
            Cond::FirstAccess(_, None) => days = days.max(400),
            _ => {}
        });
    }
    days * 86_400
}

/// How a decision's errors end when what it decided could not be saved (the store's error comes
/// before it): a completion that could not be saved is logged `failed` with it, and a backtest
/// compares it as the completion the rules made (`stepup-decisionlog`).
pub const NOTHING_SAVED: &str = "; nothing was saved";

/// How many times [`Engine::process`] decides a request whose commit conflicts with another
/// instance's before it gives up (and fails closed).
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;

/// A shared engine: one compiled set behind an atomic pointer. `Send + Sync`; reloads never
/// block readers.
pub struct Engine {
    current: ArcSwap<CompiledSet>,
}

impl Engine {
    /// An engine serving `set`.
    #[must_use]
    pub fn new(set: CompiledSet) -> Self {
        Engine {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// Loads the `.policy` files under `paths`.
    ///
    /// # Errors
    /// As [`CompiledSet::load`].
    pub fn load(paths: &[PathBuf]) -> Result<Self, LoadError> {
        CompiledSet::load(paths).map(Engine::new)
    }

    /// The set in force.
    #[must_use]
    pub fn current(&self) -> Arc<CompiledSet> {
        self.current.load_full()
    }

    /// Swaps in a new set atomically; requests in flight finish on the old one. The old set is
    /// freed by the process's retiring thread ([`stepup_core::threads::retire`]) once the last
    /// of them is done with it (a set of thousands of policies takes tens of milliseconds to
    /// free, which no request waits for); a small one (below
    /// [`stepup_core::threads::PARALLEL_FROM_POLICIES`] policies) by whoever holds it last.
    pub fn swap(&self, set: CompiledSet) {
        self.swap_on(set, stepup_core::threads::PARALLEL_FROM_POLICIES);
    }

    /// [`Engine::swap`], the old set retired from `retire_from` policies.
    fn swap_on(&self, set: CompiledSet, retire_from: usize) {
        let old = self.current.swap(Arc::new(set));
        if old.policy_count() >= retire_from {
            stepup_core::threads::retire(old);
        }
    }

    /// Decides an event against explicit state (pure: nothing is written). A dry run: the
    /// decision's `effects` (a spent grant, a completed challenge, an established session, what
    /// the history learns) are not saved, so an allow from here must not be acted on unless
    /// they are committed (`Store::commit`, compare-and-set on the state's version) and the
    /// commit succeeds; decided again on the same state, an `every time` grant allows again.
    /// Services use [`Engine::process`], which does that.
    #[must_use]
    pub fn decide(&self, req: &Request, state: &State) -> Decision {
        self.current.load().decide(req, state, false)
    }

    /// Decides with an explanation.
    #[must_use]
    pub fn explain(&self, req: &Request, state: &State) -> Decision {
        self.current.load().decide(req, state, true)
    }

    /// Loads the state from `store`, decides, and commits the effects atomically, only if the
    /// session is unchanged since it was loaded; on a conflict (another instance decided on it
    /// first) it decides again on the fresh state, up to [`MAX_COMMIT_ATTEMPTS`] times. A store
    /// failure fails closed: a store that cannot be read refuses, a completion that cannot be
    /// saved fails, and an allow that cannot be saved (it spends a grant or establishes the
    /// session) is refused.
    pub fn process(&self, store: &dyn Store, req: &Request, explain: bool) -> Decision {
        self.process_inner(store, req, explain, false).0
    }

    /// Like [`Engine::process`], also returning the state the decision was made on (`None`
    /// when the store could not be read): what a decision log records so that the decision can
    /// be made again offline (`stepup backtest`).
    pub fn process_for_log(
        &self,
        store: &dyn Store,
        req: &Request,
        explain: bool,
    ) -> (Decision, Option<State>) {
        self.process_inner(store, req, explain, true)
    }

    fn process_inner(
        &self,
        store: &dyn Store,
        req: &Request,
        explain: bool,
        keep_state: bool,
    ) -> (Decision, Option<State>) {
        let set = self.current.load();
        let mut conflicts = 0u32;
        loop {
            let state = match store.load(&req.tenant, &req.user, &req.session) {
                Ok((history, session)) => State {
                    history: Ok(history),
                    session,
                },
                // Without the session nothing can be decided or recorded: refuse.
                Err(e) => return (set.refuse_for_store(req, None, e.to_string()), None),
            };
            let mut d = set.decide(req, &state, explain);
            let kept = keep_state.then(|| state.clone());
            if d.effects.session.is_none() && d.effects.history.is_none() {
                return (d, kept);
            }
            let Err(e) = store.commit(
                &req.tenant,
                &req.user,
                &req.session,
                d.effects.session.as_ref(),
                d.effects.history.as_deref(),
            ) else {
                return (d, kept);
            };
            if matches!(e, StoreError::Conflict { .. }) && conflicts + 1 < MAX_COMMIT_ATTEMPTS {
                // Another instance decided on this session first: decide again on its state.
                conflicts += 1;
                continue;
            }
            let note = format!("{e}{NOTHING_SAVED}");
            d.errors.push(note.clone());
            for r in &mut d.audit {
                r.errors.push(note.clone());
            }
            if d.kind == DecisionKind::Completed {
                d.kind = DecisionKind::Failed;
                d.message = Some("The step-up could not be recorded; try again.".into());
                for r in &mut d.audit {
                    r.name = audit_names::FAILED;
                }
            } else if d.kind == DecisionKind::Allow && d.effects.session.is_some() {
                // An allow that establishes a session or spends a grant is an allow only if
                // its commit succeeded (SPEC §10).
                let mut refused = set.refuse_for_store(req, state.history.as_ref().ok(), note);
                refused.trace = d.trace.take();
                return (refused, kept);
            }
            return (d, kept);
        }
    }

    /// Like [`Engine::process`], for services whose session lives in the access token: the
    /// session is given (see [`crate::contract::session_from_claims`]); only the user's history
    /// is read from and written to the store. So the session's challenges and grants are not
    /// stored: a step-up on this path is completed by a fresh token checked with
    /// [`crate::contract::check_claims_mapped`], never by an `Event::StepUp`, and the service
    /// decides each login's `SignIn` itself (a session from claims is taken as established).
    pub fn process_with_session(
        &self,
        store: &dyn Store,
        req: &Request,
        session: crate::state::SessionState,
    ) -> Decision {
        let history = match store.load(&req.tenant, &req.user, &req.session) {
            Ok((h, _)) => Ok(h),
            Err(e) => Err(e.to_string()),
        };
        let state = State { history, session };
        let mut d = self.current.load().decide(req, &state, false);
        if let Some(update) = d.effects.history.as_ref()
            && let Err(e) = store.commit(&req.tenant, &req.user, &req.session, None, Some(update))
        {
            let note = format!("{e}{NOTHING_SAVED}");
            d.errors.push(note.clone());
            for r in &mut d.audit {
                r.errors.push(note.clone());
            }
        }
        d
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed assertion is the report"
)]
pub(crate) mod tests {
    use super::*;

    /// A tenant whose compilation panics (a bug) fails the load, naming the tenant, on threads
    /// or not: never a set without it, where its requests would find no tenant, or its
    /// neighbours' policies.
    #[test]
    fn a_tenant_whose_compilation_panics_fails_the_load() {
        let text = "tenant t0 {\n  operation pay sensitive\n  policy p { when operation == pay require aal2 }\n}\ntenant t_compile_panics {\n  operation pay sensitive\n  policy p { when operation == pay require aal2 }\n}\n";
        for parallel_from in [0, usize::MAX] {
            let model = stepup_dsl::load_sources(&[stepup_dsl::Source::text("t.policy", text)])
                .set
                .unwrap();
            match CompiledSet::compile_on(model, parallel_from) {
                Err(LoadError::Scope(e)) => {
                    assert!(e.contains("`t_compile_panics` did not compile"), "{e}");
                }
                Err(e) => panic!("another error: {e:?}"),
                Ok(_) => panic!("a set without the tenant whose compilation panicked"),
            }
        }
    }

    /// A `pay` operation of user `u` (password and TOTP enrolled) in session `s`.
    pub(crate) fn pay(tenant: &str, app: &str, attrs: Vec<(String, crate::Value)>) -> Request {
        Request {
            tenant: tenant.into(),
            application: app.into(),
            user: "u".into(),
            enrolled: [stepup_core::Factor::Password, stepup_core::Factor::Totp]
                .into_iter()
                .collect(),
            session: "s".into(),
            event: crate::Event::Operation {
                name: "pay".into(),
                attrs,
                context: None,
            },
            now: stepup_core::Timestamp(1_800_000_000),
        }
    }

    /// A request reaches its own tenant's policies, and a tenant the rules do not define is
    /// refused, with few tenants or many: `abb` loads to the word `ab` loads to (see
    /// `names::tail`), and only its length tells them apart.
    #[test]
    fn each_tenant_finds_its_own_scope_and_no_other() {
        for extra in [0usize, 9] {
            let mut text = String::new();
            let mut names: Vec<String> = vec!["ab".into(), "a".into(), "abcdefgh".into()];
            names.extend((0..extra).map(|i| format!("t{i}")));
            for (i, n) in names.iter().enumerate() {
                text.push_str(&format!(
                    "tenant {n} {{\n  operation pay sensitive\n  policy p \"Tenant {i}.\" {{ when operation == pay require aal2 }}\n}}\n"
                ));
            }
            let set = CompiledSet::from_text("t.policy", &text).unwrap();
            let decide =
                |tenant: &str| set.decide(&pay(tenant, "", vec![]), &State::established(), false);
            for (i, n) in names.iter().enumerate() {
                let d = decide(n);
                assert_eq!(d.kind, crate::DecisionKind::StepUp, "{n}");
                assert_eq!(
                    d.message.as_deref(),
                    Some(format!("Tenant {i}.").as_str()),
                    "{n}"
                );
            }
            for stranger in ["abb", "", "b", "abcdefgh1", "abcdefg", "AB", "ab\0"] {
                let d = decide(stranger);
                assert_eq!(d.kind, crate::DecisionKind::Deny, "{stranger:?}");
                assert!(
                    d.errors
                        .iter()
                        .any(|e| e.contains("is not defined by the rules")),
                    "{stranger:?}: {:?}",
                    d.errors
                );
            }
        }
    }

    /// An attribute or a string value whose name loads to a known one's word (`abb` beside
    /// `ab`) is another name: an attribute the rules read is then missing, and the policy reading
    /// it fires (fails closed); a string not in a test's set is not taken for one that is. With
    /// enough policies on the operation for its attribute index, and with too few.
    #[test]
    fn a_name_that_shares_a_known_names_word_is_another_name() {
        for policies in [1usize, 12] {
            let mut text = String::from(
                "tenant t {\n  operation pay sensitive\n  attribute ab: number\n  attribute c: string\n",
            );
            for i in 0..policies {
                text.push_str(&format!(
                    "  policy p{i} {{ when operation == pay and ab < {} and c in [\"ab\", \"x{i}\"] require aal2 }}\n",
                    5 + i
                ));
            }
            text.push_str("}\n");
            let set = CompiledSet::from_text("t.policy", &text).unwrap();
            let kind = |attrs: Vec<(String, crate::Value)>| {
                set.decide(&pay("t", "", attrs), &State::established(), false)
                    .kind
            };
            let n = |v: f64| crate::Value::Number(v);
            let s = |v: &str| crate::Value::Str(v.into());
            use crate::DecisionKind::{Allow, StepUp};
            // The attributes as named: `ab` is 100, no policy fires.
            assert_eq!(
                kind(vec![("ab".into(), n(100.0)), ("c".into(), s("ab"))]),
                Allow
            );
            assert_eq!(
                kind(vec![("ab".into(), n(1.0)), ("c".into(), s("ab"))]),
                StepUp
            );
            // `abb` is not `ab`: `ab` is missing, so every policy fires.
            assert_eq!(
                kind(vec![("abb".into(), n(100.0)), ("c".into(), s("ab"))]),
                StepUp,
                "{policies}"
            );
            assert_eq!(
                kind(vec![("a".into(), n(100.0)), ("c".into(), s("ab"))]),
                StepUp,
                "{policies}"
            );
            // `abb` is not in `["ab", ...]`: no policy fires, whatever `ab` is.
            assert_eq!(
                kind(vec![("ab".into(), n(1.0)), ("c".into(), s("abb"))]),
                Allow,
                "{policies}"
            );
            assert_eq!(
                kind(vec![("ab".into(), n(1.0)), ("c".into(), s("a"))]),
                Allow,
                "{policies}"
            );
        }
    }

    /// A set swapped out stays whole for the reader still holding it, and is freed after that
    /// reader lets go (on the retiring thread: `stepup_core::threads`' test); the set swapped
    /// in serves at once.
    #[test]
    fn a_swapped_out_set_is_freed_after_its_last_reader() {
        let text = |n: usize| {
            let mut t = String::from("tenant t {\n  operation pay sensitive\n");
            for i in 0..n {
                t.push_str(&format!(
                    "  policy p{i} {{ when operation == pay require aal2 }}\n"
                ));
            }
            t + "}\n"
        };
        let old = CompiledSet::from_text("t.policy", &text(3)).unwrap();
        let new = CompiledSet::from_text("t.policy", &text(2)).unwrap();
        assert_eq!((old.policy_count(), new.policy_count()), (3, 2));
        let new_hash = new.hash();
        let engine = Engine::new(old);
        let reader = engine.current();
        let weak = Arc::downgrade(&reader);
        engine.swap_on(new, 0);
        assert_eq!(engine.current().hash(), new_hash, "the new set serves");
        assert_eq!(reader.policy_count(), 3, "the reader's set is whole");
        assert_eq!(
            Arc::strong_count(&reader),
            2,
            "the retiring thread holds the old set with the reader, so the reader's drop is not \
             the last"
        );
        drop(reader);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while weak.upgrade().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "a swapped-out set was never freed"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Tenants compiled on threads decide as tenants compiled one after the other.
    #[test]
    fn a_set_compiled_on_threads_decides_as_one_compiled_in_order() {
        let mut text = String::new();
        for t in 0..5 {
            text.push_str(&format!(
                "tenant t{t} {{\n  operation pay sensitive\n  attribute amount: number\n"
            ));
            for i in 0..12 {
                text.push_str(&format!(
                    "  policy p{i} {{ when operation == pay and amount > {}0 require aal{} for 5m }}\n",
                    i + t,
                    2 + i % 2
                ));
            }
            text.push_str(&format!(
                "}}\napplication a of t{t} {{\n  when amount > 3 require aal3\n}}\n"
            ));
        }
        let model = || {
            stepup_dsl::load_sources(&[stepup_dsl::Source::text("t.policy", &text)])
                .set
                .unwrap()
        };
        let threads = CompiledSet::compile_on(model(), 0).unwrap();
        let one = CompiledSet::compile_on(model(), usize::MAX).unwrap();
        for t in 0..5 {
            for app in ["", "a"] {
                for amount in [0.0, 45.0, 95.0, 200.0] {
                    let req = pay(
                        &format!("t{t}"),
                        app,
                        vec![("amount".into(), crate::Value::Number(amount))],
                    );
                    let state = State::established();
                    let d = threads.decide(&req, &state, true);
                    assert_eq!(d, one.decide(&req, &state, true));
                    assert_eq!(
                        d.kind,
                        if amount > 0.0 {
                            crate::DecisionKind::StepUp
                        } else {
                            crate::DecisionKind::Allow
                        },
                        "{d:?}"
                    );
                }
            }
        }
    }
}
