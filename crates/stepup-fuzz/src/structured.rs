//! The structured target: the input's bytes are read with [`arbitrary`] as a random policy set
//! (in the vocabulary of the engine's differential property test: operations, resources,
//! typed attributes, every signal, scripts that fail, report-only policies, an application
//! override, `every time`), random requests, random states and a store that fails on purpose.
//!
//! For every request it checks the three answers that must agree or hold:
//! - the compiled tree decides exactly as the reference interpreter;
//! - fail closed (SPEC §10): a request that steps up or is refused is never allowed once an
//!   input is removed or corrupted (an attribute dropped or mistyped, a context field dropped,
//!   the IP garbled, the history unreadable, every script failing, a factor or a session event
//!   or the grants taken away);
//! - through [`Engine::process`] on a store that fails to load, fails to commit, or reports
//!   conflicts: a store fault never allows what the healthy store would refuse, an unreadable
//!   store refuses (`store_unavailable`), an allow or completion that needs a write is not one
//!   when the write fails, a failed commit writes nothing, and with a healthy store the
//!   decision is the pure one and is committed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::decision::DenyReason;
use stepup_engine::engine::MAX_COMMIT_ATTEMPTS;
use stepup_engine::state::{AuthEvent, Grant, HistoryUpdate, LastSignIn, SessionState};
use stepup_engine::{
    CompiledSet, Context, Decision, DecisionKind, Engine, Event, Location, MemoryStore, Request,
    State, Store, StoreError, UserHistory, Value,
};

use crate::{Finding, Outcome};

const T: &str = "differential";
const NOW: i64 = 1_800_000_000;

fn finding(what: impl Into<String>) -> Finding {
    Finding {
        target: T,
        what: what.into(),
    }
}

/// A leaf of a condition.
#[derive(Debug, Clone, Arbitrary)]
enum Leaf {
    OpEq(u8),
    OpIn(u8, u8, u8),
    ResEq(u8),
    Risk(u8),
    Amount(u16),
    PlanGold,
    Vip,
    NewDevice,
    NewCountry(u8),
    Travel,
    Threat,
    FirstAccess(u8, Option<u8>),
    Script(u8),
}

impl Leaf {
    fn text(&self) -> String {
        match self {
            Leaf::OpEq(k) => format!("operation == o{}", k % 6),
            Leaf::OpIn(a, b, c) => format!("operation in [o{}, o{}, o{}]", a % 6, b % 6, c % 6),
            Leaf::ResEq(k) => format!("resource == r{}", k % 3),
            Leaf::Risk(n) => format!("risk >= {}", n % 101),
            Leaf::Amount(n) => format!("amount > {}", n % 3000),
            Leaf::PlanGold => "plan == \"gold\"".into(),
            Leaf::Vip => "vip".into(),
            Leaf::NewDevice => "new_device".into(),
            Leaf::NewCountry(d) => format!("new_country({}d)", 1 + d % 59),
            Leaf::Travel => "impossible_travel".into(),
            Leaf::Threat => "threat_intel".into(),
            Leaf::FirstAccess(k, None) => format!("first_access(r{})", k % 3),
            Leaf::FirstAccess(k, Some(d)) => format!("first_access(r{}, {}d)", k % 3, 1 + d % 29),
            Leaf::Script(k) => match k % 4 {
                0 => "script \"ctx.amount > 100\"".into(),
                1 => "script \"ctx.amount / 0 > 1\"".into(),
                2 => "script \"ctx.vip\"".into(),
                _ => "script \"ctx.risk > 50 || ctx.signals.new_device\"".into(),
            },
        }
    }
}

/// A condition (depth-limited when written).
#[derive(Debug, Clone, Arbitrary)]
enum Cond {
    Leaf(Leaf),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    fn text(&self, depth: u32) -> String {
        let join = |v: &[Cond], op: &str| {
            let parts: Vec<String> = v.iter().take(3).map(|c| c.text(depth + 1)).collect();
            match parts.len() {
                0 => "new_device".to_string(),
                1 => parts.concat(),
                _ => format!("({})", parts.join(op)),
            }
        };
        match self {
            _ if depth >= 3 => match self {
                Cond::Leaf(l) => l.text(),
                _ => "new_device".into(),
            },
            Cond::Leaf(l) => l.text(),
            Cond::And(v) => join(v, " and "),
            Cond::Or(v) => join(v, " or "),
            Cond::Not(c) => format!("not ({})", c.text(depth + 1)),
        }
    }
}

const REQUIRES: [&str; 8] = [
    "require aal1",
    "require aal2 factor any for 15m",
    "require aal2 factor not sms for 5m",
    "require aal2 factor sms|push for 1h",
    "require aal3 factor webauthn|totp for 5m",
    "require aal3 factor webauthn every time",
    "require aal2 every time",
    "require aal3 factor any for 90s",
];

#[derive(Debug, Clone, Arbitrary)]
struct PolicySpec {
    cond: Cond,
    require: u8,
    report_only: bool,
}

impl PolicySpec {
    fn text(&self, name: &str, message: &str) -> String {
        let ro = if self.report_only { "report_only " } else { "" };
        let r = REQUIRES
            .get(usize::from(self.require) % REQUIRES.len())
            .copied()
            .unwrap_or("require aal2");
        format!(
            " {ro}policy {name} \"{message}\" {{ when {} {r} }}\n",
            self.cond.text(0)
        )
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct SetSpec {
    first: PolicySpec,
    more: Vec<PolicySpec>,
    app: Option<(u8, PolicySpec, PolicySpec)>,
    cache_off: bool,
}

impl SetSpec {
    fn text(&self) -> String {
        let mut s = String::from(
            "tenant t {\n operation o0 sensitive operation o1 routine operation o2 admin operation o3 admin operation o4 sensitive operation o5 sensitive\n resource r0 resource r1 resource r2\n attribute amount: number attribute plan: string attribute vip: bool\n risk { weight new_device 30 weight new_country 40 threat_feed \"feed.netset\" }\n",
        );
        for (i, p) in std::iter::once(&self.first)
            .chain(self.more.iter().take(11))
            .enumerate()
        {
            s.push_str(&p.text(&format!("p{i}"), &format!("Message {i}.")));
        }
        s.push_str("}\napplication a of t {\n");
        if self.cache_off {
            s.push_str(" cache off\n");
        }
        if let Some((i, over, extra)) = &self.app {
            s.push_str(&over.text(&format!("p{}", i % 12), "Override."));
            s.push_str(&extra.text("extra", "Extra."));
        }
        s.push_str("}\n");
        s
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct CtxSpec {
    device: Option<u8>,
    ip: Option<u8>,
    country: Option<u8>,
    location: Option<u8>,
    risk: Option<u8>,
}

impl CtxSpec {
    fn context(&self) -> Context {
        const IPS: [&str; 4] = [
            "198.51.100.7",
            "203.0.113.9",
            "not-an-ip",
            "2001:db8:bad::1",
        ];
        const COUNTRIES: [&str; 3] = ["FR", "US", "BE"];
        const PLACES: [(f64, f64); 3] = [(48.85, 2.35), (40.71, -74.0), (50.85, 4.35)];
        let pick = |v: Option<u8>, n: usize| v.map(|k| usize::from(k) % n);
        Context {
            device: self.device.map(|k| format!("d{}", 1 + k % 3)),
            ip: pick(self.ip, IPS.len())
                .and_then(|i| IPS.get(i))
                .map(|s| (*s).to_string()),
            country: pick(self.country, COUNTRIES.len())
                .and_then(|i| COUNTRIES.get(i))
                .map(|s| (*s).to_string()),
            location: pick(self.location, PLACES.len())
                .and_then(|i| PLACES.get(i))
                .map(|(lat, lon)| Location {
                    lat: *lat,
                    lon: *lon,
                }),
            platform_risk: self.risk.map(|r| u32::from(r % 120)),
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
enum EventSpec {
    SignIn(CtxSpec, Option<u8>),
    Operation {
        op: u8,
        amount: Option<u8>,
        plan: Option<bool>,
        vip: Option<bool>,
        context: Option<CtxSpec>,
    },
    Access(u8, Option<CtxSpec>),
    StepUp(u8, bool),
}

fn factor(k: u8) -> Factor {
    Factor::ALL
        .get(usize::from(k) % Factor::ALL.len())
        .copied()
        .unwrap_or(Factor::Totp)
}

impl EventSpec {
    fn event(&self) -> Event {
        const AMOUNTS: [f64; 4] = [50.0, 150.0, 1500.0, 2500.0];
        match self {
            EventSpec::SignIn(c, f) => Event::SignIn {
                context: c.context(),
                factors: f.map_or(FactorSet::one(Factor::Password), |b| {
                    FactorSet::from_bits(b & 127)
                }),
            },
            EventSpec::Operation {
                op,
                amount,
                plan,
                vip,
                context,
            } => {
                let mut attrs = Vec::new();
                if let Some(a) = amount.and_then(|a| AMOUNTS.get(usize::from(a) % 4)) {
                    attrs.push(("amount".to_string(), Value::Number(*a)));
                }
                if let Some(p) = plan {
                    let p = if *p { "gold" } else { "free" };
                    attrs.push(("plan".to_string(), Value::Str(p.into())));
                }
                if let Some(v) = vip {
                    attrs.push(("vip".to_string(), Value::Bool(*v)));
                }
                Event::Operation {
                    name: format!("o{}", op % 7),
                    attrs,
                    context: context.as_ref().map(CtxSpec::context),
                }
            }
            EventSpec::Access(r, c) => Event::Access {
                resource: format!("r{}", r % 4),
                context: c.as_ref().map(CtxSpec::context),
            },
            EventSpec::StepUp(f, ok) => Event::StepUp {
                factor: factor(*f),
                success: *ok,
            },
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct StateSpec {
    devices: u8,
    countries: Vec<(bool, u32)>,
    last: Option<(u16, bool)>,
    accesses: Vec<(u8, u32)>,
    events: Vec<(u16, u8)>,
    grant: Option<(u8, u8, bool, Option<u8>)>,
    established: u8,
}

impl StateSpec {
    fn state(&self) -> (UserHistory, SessionState) {
        let history = UserHistory {
            devices: (0..2)
                .filter(|i| self.devices & (1 << i) != 0)
                .map(|i| format!("d{}", i + 1))
                .collect(),
            countries: self
                .countries
                .iter()
                .take(2)
                .map(|(fr, ago)| {
                    let c = if *fr { "FR" } else { "US" };
                    (
                        c.to_string(),
                        Timestamp(NOW - i64::from(ago % (60 * 86_400))),
                    )
                })
                .collect(),
            last_sign_in: self.last.map(|(ago, paris)| LastSignIn {
                at: Timestamp(NOW - i64::from(ago % 7_200)),
                country: None,
                location: Some(if paris {
                    Location {
                        lat: 48.85,
                        lon: 2.35,
                    }
                } else {
                    Location {
                        lat: 40.71,
                        lon: -74.0,
                    }
                }),
            }),
            accesses: self
                .accesses
                .iter()
                .take(2)
                .map(|(k, ago)| {
                    (
                        format!("r{}", k % 3),
                        Timestamp(NOW - i64::from(ago % (40 * 86_400))),
                    )
                })
                .collect(),
        };
        let mut session = SessionState {
            established: !self.established.is_multiple_of(4),
            events: self
                .events
                .iter()
                .take(3)
                .map(|(ago, f)| AuthEvent {
                    at: Timestamp(NOW - i64::from(ago % 4_000)),
                    factors: FactorSet::from_bits(f & 127),
                    cap: None,
                    unnamed: false,
                })
                .collect(),
            ..SessionState::default()
        };
        if let Some((op, p, in_app, amount)) = self.grant {
            const AMOUNTS: [u32; 4] = [50, 150, 1500, 2500];
            session.grants.push(Grant {
                challenge_id: "c".into(),
                application: if in_app { "a".into() } else { "".into() },
                binding: vec![(
                    "amount".into(),
                    amount
                        .and_then(|a| AMOUNTS.get(usize::from(a) % 4))
                        .map(|a| Value::Number(f64::from(*a))),
                )],
                event_key: format!("operation:o{}", op % 7).into(),
                policies: vec![format!("p{}", p % 12)],
                proof: Some(AuthEvent {
                    at: Timestamp(NOW - 10),
                    factors: FactorSet::ANY,
                    cap: None,
                    unnamed: false,
                }),
                expires_at: Timestamp(NOW + 100),
                login: None,
            });
        }
        (history, session)
    }
}

/// A fault of the store during one request.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum FaultSpec {
    None,
    FailLoad,
    FailCommit,
    Conflicts(u8),
}

#[derive(Debug, Clone, Arbitrary)]
struct CaseSpec {
    event: EventSpec,
    state: StateSpec,
    enrolled: u8,
    in_app: bool,
    fresh: bool,
    store_down: bool,
    fault: FaultSpec,
}

#[derive(Debug, Clone, Arbitrary)]
struct Cases {
    first: CaseSpec,
    more: Vec<CaseSpec>,
}

/// The generated sets' directory with their threat feed, written once.
fn feed_dir() -> std::path::PathBuf {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stepup-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            dir.join("feed.netset"),
            "203.0.113.0/24\n2001:db8:bad::/48\n",
        );
        dir
    })
    .clone()
}

/// Compiled sets by text, kept for the next inputs (libFuzzer's mutations often leave the
/// policy part of an input alone): checking and compiling a set is most of an input's cost.
fn cached(text: &str) -> Result<Arc<Engine>, Finding> {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Arc<Engine>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(e) = CACHE.with(|c| c.borrow().get(text).cloned()) {
        return Ok(e);
    }
    let engine = Arc::new(Engine::new(compile(text)?));
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 512 {
            c.clear();
        }
        c.insert(text.to_string(), Arc::clone(&engine));
    });
    Ok(engine)
}

fn compile(text: &str) -> Result<CompiledSet, Finding> {
    let loaded = stepup_dsl::load_sources(&[stepup_dsl::Source {
        name: "gen.policy".into(),
        bytes: text.as_bytes().to_vec(),
        base_dir: feed_dir(),
    }]);
    let Some(model) = loaded.set else {
        return Err(finding(format!(
            "a generated set does not check:\n{text}\n{}",
            stepup_dsl::diag::render_all(&loaded.diagnostics, false)
        )));
    };
    CompiledSet::compile(model).map_err(|e| finding(format!("does not compile: {e}")))
}

/// Every script made to fail (divides by zero first).
fn failing_scripts(text: &str) -> String {
    text.replace("script \"", "script \"ctx.amount / 0 > 1 && ")
}

/// The single corruptions of a request and its state (SPEC §10).
fn corruptions(req: &Request, state: &State) -> Vec<(String, Request, State)> {
    let mut out = Vec::new();
    let mut push = |what: &str, f: &dyn Fn(&mut Request, &mut State)| {
        let (mut r, mut s) = (req.clone(), state.clone());
        f(&mut r, &mut s);
        out.push((what.to_string(), r, s));
    };
    for i in 0..3usize {
        push(&format!("drop attribute {i}"), &|r, _| {
            if let Event::Operation { attrs, .. } = &mut r.event
                && i < attrs.len()
            {
                attrs.remove(i);
            }
        });
        push(&format!("mistype attribute {i}"), &|r, _| {
            if let Event::Operation { attrs, .. } = &mut r.event
                && let Some((name, v)) = attrs.get_mut(i)
            {
                // A type the attribute is not declared with (`amount: number`, `plan: string`,
                // `vip: bool`), whatever it holds: never a valid value of its own type.
                *v = match name.as_str() {
                    "plan" => Value::Number(1.0),
                    _ => Value::Str("1".into()),
                };
            }
        });
        push(&format!("drop session event {i}"), &|_, s| {
            if i < s.session.events.len() {
                s.session.events.remove(i);
            }
        });
    }
    for k in 0..5u8 {
        push(&format!("drop context field {k}"), &|r, _| {
            let ctx = match &mut r.event {
                Event::SignIn { context, .. } => Some(context),
                Event::Operation { context, .. } | Event::Access { context, .. } => {
                    context.as_mut()
                }
                Event::StepUp { .. } => None,
            };
            if let Some(c) = ctx {
                match k {
                    0 => c.device = None,
                    1 => c.ip = None,
                    2 => c.country = None,
                    3 => c.location = None,
                    _ => c.ip = Some("999.1.2.3".into()),
                }
            }
        });
    }
    push("history unreadable", &|_, s| {
        s.history = Err("store down".into());
    });
    push("grants dropped", &|_, s| s.session.grants.clear());
    for f in Factor::ALL {
        push(&format!("{f} not enrolled"), &|r, _| {
            r.enrolled = r.enrolled.intersect(FactorSet::one(f).complement());
        });
        push(&format!("{f} not used at sign-in"), &|r, _| {
            if let Event::SignIn { factors, .. } = &mut r.event {
                *factors = factors.intersect(FactorSet::one(f).complement());
            }
        });
    }
    out
}

/// A memory store that fails on purpose: loads, commits, or a number of commits reported as
/// conflicts (nothing written).
struct Flaky {
    inner: MemoryStore,
    fail_load: bool,
    fail_commit: bool,
    conflicts: AtomicU32,
}

impl Store for Flaky {
    fn load(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
    ) -> Result<(UserHistory, SessionState), StoreError> {
        if self.fail_load {
            return Err(StoreError::Unavailable("fault: connection reset".into()));
        }
        self.inner.load(tenant, user, session)
    }
    fn commit(
        &self,
        tenant: &str,
        user: &str,
        session: &str,
        state: Option<&SessionState>,
        update: Option<&HistoryUpdate>,
    ) -> Result<(), StoreError> {
        if self.fail_commit {
            return Err(StoreError::Timeout(250));
        }
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Conflict {
                expected: state.map_or(0, |s| s.version),
            });
        }
        self.inner.commit(tenant, user, session, state, update)
    }
    fn put_history(&self, tenant: &str, user: &str, h: &UserHistory) -> Result<(), StoreError> {
        self.inner.put_history(tenant, user, h)
    }
    fn reset_session(&self, tenant: &str, user: &str, session: &str) -> Result<(), StoreError> {
        self.inner.reset_session(tenant, user, session)
    }
}

fn refusal(d: &Decision) -> bool {
    matches!(d.kind, DecisionKind::StepUp | DecisionKind::Deny)
}

/// Runs one request through [`Engine::process`] on a store seeded with `history` and
/// `session`, with `fault`.
fn through_store(
    engine: &Engine,
    req: &Request,
    history: &UserHistory,
    session: &SessionState,
    fault: FaultSpec,
) -> Outcome {
    let store = Flaky {
        inner: MemoryStore::new(),
        fail_load: matches!(fault, FaultSpec::FailLoad),
        fail_commit: matches!(fault, FaultSpec::FailCommit),
        conflicts: AtomicU32::new(match fault {
            FaultSpec::Conflicts(n) => u32::from(n % 10),
            _ => 0,
        }),
    };
    let seed = |e: StoreError| finding(format!("seeding a memory store: {e}"));
    store
        .inner
        .put_history(&req.tenant, &req.user, history)
        .map_err(seed)?;
    store
        .inner
        .commit(&req.tenant, &req.user, &req.session, Some(session), None)
        .map_err(seed)?;
    let before = store
        .inner
        .load(&req.tenant, &req.user, &req.session)
        .map_err(seed)?;
    let healthy = engine.decide(
        req,
        &State {
            history: Ok(before.0.clone()),
            session: before.1.clone(),
        },
    );
    let actual = engine.process(&store, req, false);
    let after = store
        .inner
        .load(&req.tenant, &req.user, &req.session)
        .map_err(seed)?;
    let show = || format!("{fault:?} on {req:?}\nhealthy: {healthy:?}\nactual: {actual:?}");
    if actual.succeeded() && !healthy.succeeded() {
        return Err(finding(format!(
            "a store fault turned a refusal into an allow: {}",
            show()
        )));
    }
    let needs_write = healthy.effects.session.is_some();
    let exhausted =
        matches!(fault, FaultSpec::Conflicts(n) if u32::from(n % 10) >= MAX_COMMIT_ATTEMPTS);
    let writes = healthy.effects.session.is_some() || healthy.effects.history.is_some();
    match fault {
        FaultSpec::FailLoad => {
            if actual.kind != DecisionKind::Deny
                || actual.deny != Some(DenyReason::StoreUnavailable)
            {
                return Err(finding(format!(
                    "an unreadable store did not refuse: {}",
                    show()
                )));
            }
        }
        FaultSpec::FailCommit => {
            if needs_write && actual.succeeded() {
                return Err(finding(format!(
                    "an allow that needed a write stood without it: {}",
                    show()
                )));
            }
            if writes && actual.errors.is_empty() {
                return Err(finding(format!(
                    "a failed commit left no error: {}",
                    show()
                )));
            }
        }
        FaultSpec::Conflicts(_) if exhausted => {
            if needs_write && actual.succeeded() {
                return Err(finding(format!(
                    "an allow stood after {MAX_COMMIT_ATTEMPTS} conflicts: {}",
                    show()
                )));
            }
        }
        FaultSpec::None | FaultSpec::Conflicts(_) => {
            if actual != healthy {
                return Err(finding(format!(
                    "process differs from decide on an unchanged store: {}",
                    show()
                )));
            }
            if let Some(s) = &healthy.effects.session
                && after.1.version != s.version.wrapping_add(1)
            {
                return Err(finding(format!(
                    "the session was not committed (version {} after {}): {}",
                    after.1.version,
                    s.version,
                    show()
                )));
            }
        }
    }
    let failed = matches!(fault, FaultSpec::FailLoad | FaultSpec::FailCommit) || exhausted;
    if failed && after != before {
        return Err(finding(format!(
            "a failed commit wrote something: {}",
            show()
        )));
    }
    Ok(())
}

/// The structured target: see the module's documentation.
///
/// # Errors
/// A broken invariant.
pub fn differential(data: &[u8]) -> Outcome {
    // The first byte says how many of the next bytes describe the policy set; the rest are
    // the requests. A mutation of the requests then reuses the compiled set (see `cached`).
    let Some((n, rest)) = data.split_first() else {
        return Ok(());
    };
    let (set_bytes, case_bytes) = rest.split_at(usize::from(*n).min(rest.len()));
    let Ok(set_spec) = SetSpec::arbitrary(&mut Unstructured::new(set_bytes)) else {
        return Ok(());
    };
    let Ok(input) = Cases::arbitrary(&mut Unstructured::new(case_bytes)) else {
        return Ok(());
    };
    let text = set_spec.text();
    let engine = cached(&text)?;
    let set: Arc<CompiledSet> = engine.current();
    let mut scripts_failing: Option<Arc<Engine>> = None;
    for case in std::iter::once(&input.first).chain(input.more.iter().take(5)) {
        let (history, mut session) = case.state.state();
        if case.fresh {
            session.events.clear();
            session.established = true;
        }
        let req = Request {
            tenant: "t".into(),
            application: if case.in_app { "a".into() } else { "".into() },
            user: "u".into(),
            enrolled: FactorSet::from_bits(case.enrolled & 127),
            session: "s".into(),
            event: case.event.event(),
            now: Timestamp(NOW),
        };
        let state = State {
            history: if case.store_down {
                Err("store down".into())
            } else {
                Ok(history.clone())
            },
            session: session.clone(),
        };
        let compiled = set.decide(&req, &state, false);
        let reference = set.decide_reference(&req, &state);
        if compiled != reference {
            return Err(finding(format!(
                "compiled ≠ reference on {req:?}\nstate {state:?}\nrules:\n{text}\ncompiled: {compiled:?}\nreference: {reference:?}"
            )));
        }
        let explained = set.decide(&req, &state, true);
        if explained.kind != compiled.kind || explained.fired != compiled.fired {
            return Err(finding(format!(
                "an explanation changed the decision on {req:?}\nrules:\n{text}"
            )));
        }
        if refusal(&compiled) {
            for (what, r2, s2) in corruptions(&req, &state) {
                let after = set.decide(&r2, &s2, false);
                if after.succeeded() {
                    return Err(finding(format!(
                        "fail closed broken: {what} turned {:?} into {:?}\nrequest {req:?}\nstate {state:?}\nrules:\n{text}",
                        compiled.kind, after.kind
                    )));
                }
            }
            if text.contains("script \"") {
                if scripts_failing.is_none() {
                    scripts_failing = Some(cached(&failing_scripts(&text))?);
                }
                if let Some(s2) = &scripts_failing
                    && s2.decide(&req, &state).succeeded()
                {
                    return Err(finding(format!(
                        "fail closed broken: failing scripts allowed {req:?}\nrules:\n{text}"
                    )));
                }
            }
        }
        if !case.store_down {
            through_store(&engine, &req, &history, &session, case.fault)?;
        }
    }
    Ok(())
}
