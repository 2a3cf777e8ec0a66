//! Loading (with precise input errors) and running scenarios.

use std::collections::BTreeMap;

use stepup_core::{Factor, FactorSet, Timestamp};
use stepup_engine::state::LastSignIn;
use stepup_engine::{
    CompiledSet, Context, Decision, DecisionKind, Engine, Event, Request, State, Store, UserHistory,
};

use stepup_geoip::GeoIp;

use crate::scenario::{EventSpec, Expect, ExpectedChallenge, Scenario, resolve_time};

/// A problem with a scenario file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// File.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field concerned.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// The problem as a warning: `file:line:col: warning in `field`: message`.
    #[must_use]
    pub fn as_warning(&self) -> String {
        format!(
            "{}:{}:{}: warning in `{}`: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: error in `{}`: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// A scenario ready to run: times resolved, users checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's name.
    pub file: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Absolute time of each event.
    pub times: Vec<Timestamp>,
    /// Line of each event in the file (for messages).
    pub lines: Vec<usize>,
    /// What is suspect but replayed: an application the rules do not define (its events are
    /// decided by the tenant's own policies, SPEC §4.1; a misspelt name would be too).
    pub warnings: Vec<InputError>,
}

/// Where each line of `text` starts, for [`locate`].
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Line and column of the first occurrence of `needle` at or after `from` (`starts`: the
/// text's [`line_starts`]; the line is found by a binary search: counting the lines before
/// each event made a long scenario's load quadratic, 24,000 events 5 s: a review).
fn locate(text: &str, starts: &[usize], needle: &str, from: usize) -> (usize, usize, usize) {
    let at = text
        .get(from..)
        .and_then(|t| t.find(needle))
        .map_or(0, |i| i + from);
    let line = starts.partition_point(|s| *s <= at).max(1);
    let start = starts.get(line - 1).copied().unwrap_or(0);
    let col = text.get(start..at).map_or(0, |l| l.chars().count()) + 1;
    (line, col, at)
}

/// Parses and validates a scenario file.
///
/// # Errors
/// The first problem, located.
pub fn load(file: &str, text: &str, set: &CompiledSet) -> Result<Loaded, InputError> {
    let err = |line, column, field: &str, message: String| InputError {
        file: file.to_string(),
        line,
        column,
        field: field.to_string(),
        message,
    };
    // A byte order mark is no part of the scenario (RON read it as a character before
    // `Scenario(`: a review).
    let text = stepup_core::without_bom(text);
    // `implicit_some`: optional fields are written plainly (`device: "laptop-1"`), as in SPEC §7.
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let starts = line_starts(text);
    let scenario: Scenario = options.from_str(text).map_err(|e| {
        let (field, msg) = ron_message(&e.code.to_string());
        err(e.span.start.line, e.span.start.col, &field, msg)
    })?;
    if !set.model.tenants.contains_key(&scenario.tenant) {
        let (l, c, _) = locate(text, &starts, &format!("\"{}\"", scenario.tenant), 0);
        let known: Vec<&str> = set.model.tenants.keys().map(String::as_str).collect();
        return Err(err(
            l,
            c,
            "tenant",
            format!(
                "tenant `{}` is not defined by the rules (they define {})",
                scenario.tenant,
                known.join(", ")
            ),
        ));
    }
    let mut warnings = Vec::new();
    if let Some(m) = unknown_application(set, &scenario.tenant, &scenario.application) {
        let (l, c, _) = locate(text, &starts, &format!("\"{}\"", scenario.application), 0);
        warnings.push(err(l, c, "application", m));
    }
    let users = all_users(&scenario);
    if users.is_empty() {
        return Err(err(
            1,
            1,
            "user",
            "the scenario has no user: add `user: (id: \"alice\", enrolled: [totp])`".into(),
        ));
    }
    let (mut times, mut lines) = (Vec::new(), Vec::new());
    let mut prev: Option<Timestamp> = None;
    let mut cursor = locate(text, &starts, "events", 0).2;
    for (i, ev) in scenario.events.iter().enumerate() {
        // Where this event's text starts, at the latest (fields come in any order).
        let from = cursor;
        let (l, c, at) = locate(text, &starts, &format!("\"{}\"", ev.at()), cursor);
        cursor = at + 1;
        let t = resolve_time(ev.at(), prev)
            .map_err(|m| err(l, c + 1, &format!("events[{i}].at"), m))?;
        if let Some(p) = prev
            && t < p
        {
            return Err(err(
                l,
                c + 1,
                &format!("events[{i}].at"),
                format!(
                    "events are out of order: {} is before the previous event ({})",
                    t.to_rfc3339(),
                    p.to_rfc3339()
                ),
            ));
        }
        if let Some(u) = ev.user()
            && !users.iter().any(|x| x.id == u)
        {
            let (l, c, _) = locate(text, &starts, &format!("\"{u}\""), at);
            return Err(err(
                l,
                c,
                &format!("events[{i}].user"),
                format!("user `{u}` is not declared in `user` or `users`"),
            ));
        }
        if let Some(a) = ev.application()
            && let Some(m) = unknown_application(set, &scenario.tenant, a)
        {
            let (l, c, _) = locate(text, &starts, &format!("\"{a}\""), from);
            warnings.push(err(l, c, &format!("events[{i}].application"), m));
        }
        if let Some(e) = ev.expect() {
            check_expect(e, i).map_err(|(field, m, needle)| {
                // The offending value itself: a field's name from `from` could be an earlier
                // event's (`from` may lie in the previous event).
                let (l, c, _) = locate(text, &starts, &needle, from);
                err(l, c, &format!("events[{i}].expect.{field}"), m)
            })?;
        }
        prev = Some(t);
        times.push(t);
        lines.push(l);
    }
    for (i, u) in users.iter().enumerate() {
        // One definition per user: the enrolled factors of one and the history of another
        // would otherwise make a user no file describes.
        if users.iter().take(i).any(|v| v.id == u.id) {
            let (l, c, _) = locate(text, &starts, &format!("\"{}\"", u.id), 0);
            return Err(err(
                l,
                c + 1,
                "users",
                format!("user `{}` is defined twice: define each user once", u.id),
            ));
        }
        let last = u
            .history
            .last_sign_in
            .as_ref()
            .map(|s| ("last_sign_in.at", &s.at));
        for (field, v) in u
            .history
            .countries
            .iter()
            .chain(u.history.accesses.iter())
            .map(|(f, v)| (f.as_str(), v))
            .chain(last)
        {
            if let Err(m) = Timestamp::parse_rfc3339(v) {
                let (l, c, _) = locate(text, &starts, &format!("\"{v}\""), 0);
                return Err(err(l, c + 1, &format!("history.{field}"), m));
            }
        }
    }
    Ok(Loaded {
        file: file.to_string(),
        scenario,
        times,
        lines,
        warnings,
    })
}

/// The application a scenario's events are decided in: the one it names, or the tenant's own
/// policies (`""`) when the rules do not define it (SPEC §4.1: no application policies replace
/// the tenant's; [`load`] warns of it). The engine itself refuses an application the rules do
/// not define (a misspelt name in a service must not leave its application's policies out).
fn decided_in<'a>(engine: &Engine, tenant: &str, application: &'a str) -> &'a str {
    if unknown_application(&engine.current(), tenant, application).is_some() {
        ""
    } else {
        application
    }
}

/// Why `application` is suspect with `tenant`: the rules do not define it, so the tenant's own
/// policies decide its events (as they do for the empty application).
fn unknown_application(set: &CompiledSet, tenant: &str, application: &str) -> Option<String> {
    (!application.is_empty()
        && !set
            .model
            .applications
            .contains_key(&(tenant.to_string(), application.to_string())))
    .then(|| {
        let known: Vec<String> = set
            .model
            .applications
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, a)| format!("`{a}`"))
            .collect();
        format!(
            "application `{application}` of tenant `{tenant}` is not defined by the rules{}: the tenant's own policies decide its events",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (they define {})", known.join(", "))
            }
        )
    })
}

/// What is wrong with the expectations of event `index`: the field concerned, the message, and
/// the text to point at.
fn check_expect(e: &Expect, index: usize) -> Result<(), (&'static str, String, String)> {
    if let Some(ExpectedChallenge::IssuedBy(n)) = e.challenge
        && n > index
    {
        return Err((
            "challenge",
            format!(
                "`issued_by({n})` names a later event; a challenge is issued by an earlier event or by this one ({index})"
            ),
            format!("issued_by({n})"),
        ));
    }
    for (policy, v) in e.report_only.iter().flatten() {
        let word = v.split_whitespace().next().unwrap_or("");
        if !matches!(word, "not_fired" | "satisfied" | "step_up" | "deny") {
            return Err((
                "report_only",
                format!(
                    "`{policy}: \"{v}\"`: a report-only result is \"not_fired\", \"satisfied\", \"step_up\" (or \"step_up aal2\") or \"deny\" (or \"deny stronger_factor_required\")"
                ),
                format!("\"{v}\""),
            ));
        }
    }
    for (signal, v) in e.signals.iter().flatten() {
        if !matches!(v.as_str(), "true" | "false" | "unknown") {
            return Err((
                "signals",
                format!("`{signal}: \"{v}\"`: a signal is \"true\", \"false\" or \"unknown\""),
                format!("\"{v}\""),
            ));
        }
    }
    Ok(())
}

/// RON's message in our words, and the field it concerns.
fn ron_message(msg: &str) -> (String, String) {
    let ticks: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    match (msg.starts_with("Unexpected variant"), ticks.as_slice()) {
        (true, [x, "Factor", ..]) => (
            "factor".into(),
            format!(
                "unknown factor `{x}`; factors are password, email_otp, sms, voice, push, totp and webauthn"
            ),
        ),
        (true, [x, "EventSpec", ..]) => (
            "events".into(),
            format!("unknown event kind `{x}`; events are SignIn, Operation, Access and StepUp"),
        ),
        (true, [x, "ExpectedDecision", ..]) => (
            "expect.decision".into(),
            format!(
                "unknown decision `{x}`; decisions are allow, step_up, deny, completed and failed"
            ),
        ),
        (true, [x, "ExpectedChallenge", ..]) => (
            "expect.challenge".into(),
            format!(
                "unknown challenge expectation `{x}`; write `issued_by(N)` (N: the index of the event that issued it) or `none`"
            ),
        ),
        // `required_aal` or `session_aal`: the position says which.
        (true, [x, "Aal", ..]) => (
            "expect".into(),
            format!(
                "unknown assurance level `{x}` (in `required_aal` or `session_aal`); levels are aal1, aal2 and aal3, written bare, and `None` for none"
            ),
        ),
        (_, [first, ..]) => ((*first).to_string(), msg.to_string()),
        _ => ("scenario".into(), msg.to_string()),
    }
}

fn all_users(s: &Scenario) -> Vec<&crate::scenario::UserSpec> {
    s.user.iter().chain(s.users.iter()).collect()
}

/// A difference between an expectation and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Field.
    pub field: &'static str,
    /// Expected.
    pub expected: String,
    /// Actual.
    pub actual: String,
}

/// One event's outcome.
#[derive(Debug, Clone)]
pub struct EventResult {
    /// 0-based index.
    pub index: usize,
    /// Line in the file.
    pub line: usize,
    /// When.
    pub at: Timestamp,
    /// Whose.
    pub user: String,
    /// The application it was decided in (`""`: the tenant's own policies).
    pub application: String,
    /// What (`sign_in`, `operation:change_email`, ...).
    pub event: String,
    /// The decision, with its explanation.
    pub decision: Decision,
    /// The expectation, if any.
    pub expect: Option<Expect>,
    /// Differences from the expectation.
    pub mismatches: Vec<Mismatch>,
}

/// A replayed file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// File.
    pub file: String,
    /// Scenario name.
    pub name: String,
    /// Tenant and application.
    pub scope: (String, String),
    /// Events.
    pub events: Vec<EventResult>,
    /// What the file's loading warned of (an application the rules do not define, decided by
    /// its tenant's policies), located.
    pub warnings: Vec<String>,
}

fn history(spec: &crate::scenario::HistorySpec) -> UserHistory {
    let ts = |s: &String| Timestamp::parse_rfc3339(s).unwrap_or_default();
    UserHistory {
        devices: spec.devices.iter().cloned().collect(),
        countries: spec
            .countries
            .iter()
            .map(|(k, v)| (k.clone(), ts(v)))
            .collect(),
        last_sign_in: spec.last_sign_in.as_ref().map(|l| LastSignIn {
            at: ts(&l.at),
            country: l.country.clone(),
            location: l.location,
        }),
        accesses: spec
            .accesses
            .iter()
            .map(|(k, v)| (k.clone(), ts(v)))
            .collect(),
    }
}

/// A serialisable value as the word outputs use (`"conflict"` → `conflict`, null → `none`).
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Null) => "none".to_string(),
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// A report-only result as expectations and tables write it: `not_fired`, `satisfied`,
/// `step_up aal2`, `deny stronger_factor_required`.
#[must_use]
pub fn report_only_word(r: &stepup_engine::ReportOnly) -> String {
    use stepup_engine::WouldBe;
    match (r.would_be, r.required, r.deny) {
        (WouldBe::StepUp, Some(q), _) => format!("step_up {}", q.aal),
        (WouldBe::Deny, _, Some(reason)) => format!("deny {}", reason.as_str()),
        (w, _, _) => w.as_str().to_string(),
    }
}

/// The challenge a decision issued or answered, as an expectation names it.
fn challenge_word(d: &Decision, issued: &BTreeMap<String, usize>) -> String {
    match &d.challenge_id {
        None => ExpectedChallenge::NoChallenge.to_string(),
        Some(id) => issued.get(&**id).map_or_else(
            || format!("`{id}`, not issued by an earlier event"),
            |i| ExpectedChallenge::IssuedBy(*i).to_string(),
        ),
    }
}

/// Differences between `e` and `d`; `issued` maps the challenges issued so far (this event's
/// included) to the index of the event that issued them.
fn compare(e: &Expect, d: &Decision, issued: &BTreeMap<String, usize>) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut push = |field, expected: String, actual: String| {
        if expected != actual {
            out.push(Mismatch {
                field,
                expected,
                actual,
            });
        }
    };
    if let Some(x) = e.decision {
        push(
            "decision",
            x.as_str().to_string(),
            d.kind.as_str().to_string(),
        );
    }
    if let Some(a) = e.required_aal {
        push(
            "required_aal",
            a.map_or("none".to_string(), |a| a.to_string()),
            d.required.map_or("none".to_string(), |r| r.aal.to_string()),
        );
    }
    if let Some(f) = &e.eligible {
        push(
            "eligible",
            f.iter().copied().collect::<FactorSet>().to_string(),
            d.eligible.to_string(),
        );
    }
    if let Some(f) = &e.allowed_factors {
        push(
            "allowed_factors",
            f.iter().copied().collect::<FactorSet>().to_string(),
            d.required
                .map(|q| q.factors)
                .unwrap_or_default()
                .to_string(),
        );
    }
    if let Some(m) = e.max_age_s {
        push(
            "max_age_s",
            m.map_or("none".to_string(), |m| m.to_string()),
            d.required.map_or("none".to_string(), |q| {
                q.validity.max_age_secs().to_string()
            }),
        );
    }
    if let Some(a) = e.session_aal {
        push("session_aal", word(&a), word(&d.session_aal));
    }
    if let Some(r) = e.risk_score {
        push(
            "risk_score",
            r.map_or("none".to_string(), |r| r.to_string()),
            d.risk.as_ref().map_or("none".to_string(), |k| {
                k.score.map_or("unknown".to_string(), |n| n.to_string())
            }),
        );
    }
    if let Some(f) = &e.fired {
        let mut f = f.clone();
        f.sort();
        push(
            "fired",
            format!("[{}]", f.join(", ")),
            format!("[{}]", d.fired.join(", ")),
        );
    }
    if let Some(a) = &e.audit {
        push(
            "audit",
            format!("[{}]", a.join(", ")),
            format!(
                "[{}]",
                d.audit
                    .iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if let Some(m) = &e.message {
        push(
            "message",
            m.clone(),
            d.message.as_deref().unwrap_or_default().to_string(),
        );
    }
    if let Some(r) = &e.deny_reason {
        push("deny_reason", r.clone(), word(&d.deny));
    }
    if let Some(c) = e.challenge {
        push("challenge", c.to_string(), challenge_word(d, issued));
    }
    if let Some(ro) = &e.report_only {
        let actual = |name: &str, expected: &str| {
            let word = d
                .report_only
                .iter()
                .find(|r| r.policy == name)
                .map_or_else(|| "absent".to_string(), report_only_word);
            // `step_up` alone checks the outcome, `step_up aal2` the AAL too.
            if expected.contains(' ') {
                word
            } else {
                word.split(' ').next().unwrap_or("").to_string()
            }
        };
        let show = |pairs: Vec<String>| format!("{{{}}}", pairs.join(", "));
        push(
            "report_only",
            show(ro.iter().map(|(k, v)| format!("{k}: {v}")).collect()),
            show(
                ro.iter()
                    .map(|(k, v)| format!("{k}: {}", actual(k, v)))
                    .collect(),
            ),
        );
    }
    if let Some(sig) = &e.signals {
        let actual = |name: &str| {
            d.risk
                .as_ref()
                .and_then(|r| r.signals.iter().find(|s| s.signal.as_str() == name))
                .map_or_else(|| "absent".to_string(), |s| word(&s.value))
        };
        let show = |pairs: Vec<String>| format!("{{{}}}", pairs.join(", "));
        push(
            "signals",
            show(sig.iter().map(|(k, v)| format!("{k}: {v}")).collect()),
            show(sig.keys().map(|k| format!("{k}: {}", actual(k))).collect()),
        );
    }
    out
}

fn store_error(file: &str, e: &stepup_engine::StoreError) -> InputError {
    InputError {
        file: file.to_string(),
        line: 0,
        column: 0,
        field: "store".into(),
        message: e.to_string(),
    }
}

/// Replays a loaded scenario against `engine`, keeping state in `store`. Each user's history is
/// reset to the scenario's starting history; each sign-in opens a new session (shared by the
/// events of every application). Every event is recorded as the engine decided it: a `StepUp`
/// that answers no open challenge is the engine's `failed` decision, with its
/// `auth.step_up_failed` record.
///
/// # Errors
/// A store failure while seeding the histories or resetting a session.
pub fn replay(l: &Loaded, engine: &Engine, store: &dyn Store) -> Result<FileReport, InputError> {
    replay_observed(l, engine, store, None)
}

/// What [`replay_observed`] calls after each decision: the request, the state it was decided on
/// (`None` when the store could not be read) and the decision. A decision log is written so.
pub type Observer<'a> = &'a mut dyn FnMut(&Request, Option<&State>, &Decision);

/// Like [`replay`], calling `observe` after each decision with what a decision log records.
///
/// # Errors
/// As [`replay`].
pub fn replay_observed(
    l: &Loaded,
    engine: &Engine,
    store: &dyn Store,
    observe: Option<Observer<'_>>,
) -> Result<FileReport, InputError> {
    replay_in(
        l,
        engine,
        store,
        Options {
            observe,
            geoip: None,
        },
    )
}

/// How a replay runs beyond the scenario itself.
#[derive(Default)]
pub struct Options<'a> {
    /// Called after each decision (a decision log is written so).
    pub observe: Option<Observer<'a>>,
    /// Fills the country and location of events that give only an IP address (SPEC §11).
    /// What the database does not hold stays unknown, and fails closed.
    pub geoip: Option<&'a GeoIp>,
}

/// Like [`replay`], with [`Options`].
///
/// # Errors
/// As [`replay`].
pub fn replay_in(
    l: &Loaded,
    engine: &Engine,
    store: &dyn Store,
    options: Options<'_>,
) -> Result<FileReport, InputError> {
    let Options { mut observe, geoip } = options;
    let s = &l.scenario;
    let users = all_users(s);
    let mut sessions: BTreeMap<String, u32> = BTreeMap::new();
    let stem = std::path::Path::new(&l.file)
        .file_stem()
        .and_then(|x| x.to_str())
        .unwrap_or("scenario")
        .to_string();
    for u in &users {
        store
            .put_history(&s.tenant, &u.id, &history(&u.history))
            .map_err(|e| store_error(&l.file, &e))?;
        sessions.insert(u.id.clone(), 0);
    }
    let mut events = Vec::new();
    let mut fresh = std::collections::BTreeSet::new();
    // Challenge id → index of the event that issued it.
    let mut issued: BTreeMap<String, usize> = BTreeMap::new();
    for (i, ev) in s.events.iter().enumerate() {
        let user_id = ev.user().map_or_else(
            || users.first().map(|u| u.id.clone()).unwrap_or_default(),
            str::to_string,
        );
        let enrolled: FactorSet = users
            .iter()
            .find(|u| u.id == user_id)
            .map(|u| u.enrolled.iter().copied().collect())
            .unwrap_or_default();
        let mut event = match ev {
            EventSpec::SignIn {
                device,
                ip,
                country,
                location,
                factors,
                risk,
                ..
            } => {
                if let Some(n) = sessions.get_mut(&user_id) {
                    *n += 1;
                }
                Event::SignIn {
                    context: Context {
                        device: device.clone(),
                        ip: ip.clone(),
                        country: country.clone(),
                        location: *location,
                        platform_risk: *risk,
                    },
                    factors: factors.iter().copied().collect(),
                }
            }
            EventSpec::Operation { name, attrs, .. } => Event::Operation {
                name: name.clone(),
                attrs: attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                context: ev.own_context(),
            },
            EventSpec::Access { resource, .. } => Event::Access {
                resource: resource.clone(),
                context: ev.own_context(),
            },
            EventSpec::StepUp {
                factor, success, ..
            } => Event::StepUp {
                factor: *factor,
                success: *success,
            },
        };
        if let Some(db) = geoip
            && let Event::SignIn { context, .. }
            | Event::Operation {
                context: Some(context),
                ..
            }
            | Event::Access {
                context: Some(context),
                ..
            } = &mut event
        {
            db.fill(context);
        }
        let session = format!(
            "{stem}:{user_id}:{}",
            sessions.get(&user_id).copied().unwrap_or(0)
        );
        if fresh.insert(session.clone()) {
            // A persistent store may hold this session from an earlier run: start it afresh.
            store
                .reset_session(&s.tenant, &user_id, &session)
                .map_err(|e| store_error(&l.file, &e))?;
        }
        let at = l.times.get(i).copied().unwrap_or_default();
        let req = Request {
            tenant: s.tenant.as_str().into(),
            application: decided_in(
                engine,
                &s.tenant,
                ev.application().unwrap_or(&s.application),
            )
            .into(),
            user: user_id.as_str().into(),
            enrolled,
            session: session.into(),
            event,
            now: at,
        };
        let d = match observe.as_mut() {
            Some(f) => {
                let (d, state) = engine.process_for_log(store, &req, true);
                f(&req, state.as_ref(), &d);
                d
            }
            None => engine.process(store, &req, true),
        };
        if d.kind == DecisionKind::StepUp
            && let Some(id) = &d.challenge_id
        {
            issued.entry(id.to_string()).or_insert(i);
        }
        let expect = ev.expect().cloned();
        let mismatches = expect
            .as_ref()
            .map(|e| compare(e, &d, &issued))
            .unwrap_or_default();
        events.push(EventResult {
            index: i,
            line: l.lines.get(i).copied().unwrap_or(0),
            at,
            user: user_id,
            application: req.application.to_string(),
            event: req.event.key(),
            decision: d,
            expect,
            mismatches,
        });
    }
    Ok(FileReport {
        file: l.file.clone(),
        name: s.name.clone(),
        scope: (s.tenant.clone(), s.application.clone()),
        events,
        warnings: l.warnings.iter().map(InputError::as_warning).collect(),
    })
}

/// The same as [`replay`]: the `strict` flag is no longer read. `StepUp`s that answer no open
/// challenge used to be refused unless it was off; they are now always recorded as `failed`.
/// Kept so that existing callers compile; call [`replay`].
///
/// # Errors
/// As [`replay`].
pub fn replay_with(
    l: &Loaded,
    engine: &Engine,
    store: &dyn Store,
    _strict: bool,
) -> Result<FileReport, InputError> {
    replay(l, engine, store)
}

/// Factors as the table shows them.
#[must_use]
pub fn factor_list(f: &[Factor]) -> String {
    f.iter().map(|x| x.as_str()).collect::<Vec<_>>().join("|")
}

#[cfg(test)]
mod tests {
    /// The line and column by the line index are those counted from the text's start (the
    /// way it was done before, quadratic over a long scenario): over texts with blank lines,
    /// CRLF, multibyte characters, a needle at the start, at a line's start, at the end, and
    /// absent (then the start of the text).
    #[test]
    fn located_by_the_index_as_counted_from_the_start() {
        let counted = |text: &str, needle: &str, from: usize| {
            let at = text
                .get(from..)
                .and_then(|t| t.find(needle))
                .map_or(0, |i| i + from);
            let before = text.get(..at).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, col, at)
        };
        let texts = [
            "",
            "x",
            "a\nb\n\nc",
            "\n\n\"t\"\n",
            "é\"t\"\r\n  \"t\"\n€€\"t\"",
            "\"t\"",
            "abc\n\"t\"",
        ];
        for text in texts {
            let starts = super::line_starts(text);
            for needle in ["\"t\"", "c", "zz", "\n"] {
                for from in 0..=text.len() {
                    if !text.is_char_boundary(from) {
                        continue;
                    }
                    assert_eq!(
                        super::locate(text, &starts, needle, from),
                        counted(text, needle, from),
                        "{text:?} {needle:?} {from}"
                    );
                }
            }
        }
    }
}
