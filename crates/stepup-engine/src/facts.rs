//! The values predicates read for one event: the event itself, the signals, the history and
//! scripts. Shared by the compiled tree and the reference interpreter, so both read the same
//! facts; they differ in how they walk the conditions.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::Dynamic;
use stepup_core::{Factor, OperationClass};
use stepup_dsl::ast::CmpOp;
use stepup_dsl::fmt::quote;
use stepup_dsl::model::{AttrType, SignalKind, Tenant};
use stepup_dsl::script::{CtxField, NoAnswer, Script};

use crate::request::{Event, Request, Value};
use crate::risk::Signals;
use crate::state::UserHistory;
use crate::tri::Tri;

/// `value OP v` for a number attribute's value. Absent or of another type: unknown (SPEC §10).
#[must_use]
pub fn num_value(value: Option<&Value>, op: CmpOp, v: f64) -> Tri {
    match value {
        Some(Value::Number(x)) if x.is_finite() => Tri::from(op.apply(x, &v)),
        _ => Tri::Unknown,
    }
}

/// A string attribute's value in a set. Absent or of another type: unknown.
#[must_use]
pub fn str_value(value: Option<&Value>, set: &std::collections::BTreeSet<String>) -> Tri {
    match value {
        Some(Value::Str(s)) => Tri::from(set.contains(s)),
        _ => Tri::Unknown,
    }
}

/// A boolean attribute's value equal to `b`. Absent or of another type: unknown.
#[must_use]
pub fn bool_value(value: Option<&Value>, b: bool) -> Tri {
    match value {
        Some(Value::Bool(x)) => Tri::from(*x == b),
        _ => Tri::Unknown,
    }
}

/// Whether `v` is a known value of the type attribute `name` is declared with: what every
/// attribute predicate, script and `every time` grant binding treats as known (SPEC §10).
#[must_use]
pub(crate) fn is_declared_type(tenant: &Tenant, name: &str, v: &Value) -> bool {
    match (tenant.attributes.get(name), v) {
        (Some(AttrType::Number), Value::Number(x)) => x.is_finite(),
        (Some(AttrType::String), Value::Str(_)) | (Some(AttrType::Bool), Value::Bool(_)) => true,
        _ => false,
    }
}

/// A script's outcome in one decision (scripts run at most once per decision).
struct ScriptRun {
    /// The script's address (the same `Arc` in the model and the compiled tree).
    key: usize,
    value: Tri,
    /// Why it is unknown, when it is.
    reason: Option<String>,
}

/// The scripts run in one decision. Most decisions run none or one: the first is kept inline,
/// so a decision with one script allocates nothing for it.
#[derive(Default)]
struct ScriptRuns {
    first: Option<ScriptRun>,
    rest: Vec<ScriptRun>,
}

impl ScriptRuns {
    fn find(&self, key: usize) -> Option<&ScriptRun> {
        self.first.iter().chain(&self.rest).find(|r| r.key == key)
    }

    fn push(&mut self, run: ScriptRun) {
        if self.first.is_none() {
            self.first = Some(run);
        } else {
            self.rest.push(run);
        }
    }
}

thread_local! {
    static SCRIPT_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many scripts this thread has run. Decisions run on the caller's thread, so a test can
/// tell how often a decision ran its scripts.
#[must_use]
pub fn script_runs_on_this_thread() -> u64 {
    SCRIPT_RUNS.with(std::cell::Cell::get)
}

/// A string as a script reads it.
fn text(s: &str) -> Dynamic {
    Dynamic::from(rhai::ImmutableString::from(s))
}

fn count_run() {
    SCRIPT_RUNS.with(|n| n.set(n.get() + 1));
}

/// Facts about one event.
pub struct Facts<'a> {
    /// The request.
    pub req: &'a Request,
    /// The tenant's configuration.
    pub tenant: &'a Tenant,
    /// Lazily computed signals.
    pub signals: Signals<'a>,
    /// The history, `None` when the store failed.
    pub history: Option<&'a UserHistory>,
    /// Scripts run in this decision, with their outcome.
    scripts: RefCell<ScriptRuns>,
}

impl<'a> Facts<'a> {
    /// The facts of one request.
    #[must_use]
    pub fn new(
        req: &'a Request,
        tenant: &'a Tenant,
        signals: Signals<'a>,
        history: Option<&'a UserHistory>,
    ) -> Self {
        Facts {
            req,
            tenant,
            signals,
            history,
            scripts: RefCell::new(ScriptRuns::default()),
        }
    }
}

impl Facts<'_> {
    /// The operation's name, on operation events.
    #[must_use]
    pub fn operation(&self) -> Option<&str> {
        match &self.req.event {
            Event::Operation { name, .. } => Some(name),
            _ => None,
        }
    }
    /// The operation's class in the tenant's catalog.
    #[must_use]
    pub fn operation_class(&self) -> Option<OperationClass> {
        self.operation()
            .and_then(|o| self.tenant.operations.get(o).copied())
    }
    /// The resource class, on access events.
    #[must_use]
    pub fn resource(&self) -> Option<&str> {
        match &self.req.event {
            Event::Access { resource, .. } => Some(resource),
            _ => None,
        }
    }
    /// `risk OP v`.
    pub fn risk(&self, op: CmpOp, v: f64) -> Tri {
        self.signals.score().compare(op, v)
    }
    /// Why `risk` comparisons are unknown.
    #[must_use]
    pub fn risk_reason(&self) -> String {
        let r = self.signals.score();
        let why: Vec<String> = SignalKind::ALL
            .into_iter()
            .filter(|k| {
                self.tenant.risk.weight(*k) > 0
                    && self
                        .signals
                        .get(*k, stepup_dsl::model::DEFAULT_COUNTRY_WINDOW_DAYS)
                        == Tri::Unknown
            })
            .map(|k| self.signals.unknown_reason(k))
            .collect();
        format!(
            "`risk` is between {} and {} ({})",
            r.min,
            r.max,
            why.join("; ")
        )
    }
    /// Why an attribute comparison is unknown: absent, or of another type than declared.
    #[must_use]
    pub fn attr_reason(&self, name: &str) -> String {
        let declared = self
            .tenant
            .attributes
            .get(name)
            .map_or("value", |t| match t {
                AttrType::Number => "number",
                AttrType::String => "string",
                AttrType::Bool => "boolean",
            });
        match self.req.event.attr(name) {
            None if self.req.event.attr_named_twice(name) => {
                format!("`{name}` is given twice, with no one value")
            }
            None => format!("`{name}` is absent from the {}", self.req.event.kind()),
            Some(_) => format!("`{name}` is not a {declared}"),
        }
    }
    /// Why `first_access` is unknown.
    #[must_use]
    pub fn first_access_reason(&self, resource: &str) -> String {
        if self.history.is_some() {
            return format!(
                "`first_access({resource})` is unknown: the history dates its last access in the future"
            );
        }
        format!("`first_access({resource})` is unknown: the history store is unavailable")
    }
    /// A signal.
    pub fn signal(&self, k: SignalKind, days: u32) -> Tri {
        self.signals.get(k, days)
    }
    /// `attr OP v` on a number attribute. Absent or of another type: unknown (fail closed).
    pub fn attr_num(&self, name: &str, op: CmpOp, v: f64) -> Tri {
        num_value(self.req.event.attr(name), op, v)
    }
    /// A string attribute in a set.
    pub fn attr_str(&self, name: &str, set: &std::collections::BTreeSet<String>) -> Tri {
        str_value(self.req.event.attr(name), set)
    }
    /// A boolean attribute equal to `b`.
    pub fn attr_bool(&self, name: &str, b: bool) -> Tri {
        bool_value(self.req.event.attr(name), b)
    }
    /// `first_access(resource[, window])`: on an access to that resource, no earlier access
    /// (ever, or within the window).
    pub fn first_access(&self, resource: &str, window_days: Option<u32>) -> Tri {
        if self.resource() != Some(resource) {
            return Tri::False;
        }
        let Some(h) = self.history else {
            return Tri::Unknown;
        };
        // An access dated later than the clocks' skew allows cannot be read: unknown.
        let window = window_days.map_or(i64::MAX, |d| i64::from(d) * 86_400);
        match h
            .accesses
            .get(resource)
            .map(|at| crate::risk::age(self.req.now, *at))
        {
            None => Tri::True,
            Some(None) => Tri::Unknown,
            Some(Some(age)) => Tri::from(age > window),
        }
    }
    /// Runs a script, at most once per decision. It runs only when every `ctx` field it reads
    /// is known and of the type it is declared with; otherwise it is unknown without running.
    /// Errors and exhausted budgets are unknown (the policy fires).
    pub fn script(&self, s: &Arc<Script>) -> Tri {
        let key = Arc::as_ptr(s) as usize;
        if let Some(r) = self.scripts.borrow().find(key) {
            return r.value;
        }
        let (value, reason) = match s.eval_with(|f| self.ctx_field(f)) {
            Err(NoAnswer::NotRun(why)) => (
                Tri::Unknown,
                Some(format!("script {} not run: {why}", quote(&s.source))),
            ),
            Ok(b) => {
                count_run();
                (Tri::from(b), None)
            }
            Err(NoAnswer::Failed(e)) => {
                count_run();
                (
                    Tri::Unknown,
                    Some(format!("script {} failed: {e}", quote(&s.source))),
                )
            }
        };
        self.scripts
            .borrow_mut()
            .push(ScriptRun { key, value, reason });
        value
    }

    /// Why a script is unknown (it has run in this decision).
    #[must_use]
    pub fn script_reason(&self, s: &Arc<Script>) -> String {
        let key = Arc::as_ptr(s) as usize;
        self.scripts
            .borrow()
            .find(key)
            .and_then(|r| r.reason.clone())
            .unwrap_or_else(|| format!("script {} is unknown", quote(&s.source)))
    }

    /// The value of a `ctx` field a script reads, known and of its declared type, or the
    /// reason the script cannot run (SPEC §10).
    fn ctx_field(&self, field: &CtxField) -> Result<Dynamic, String> {
        Ok(match field {
            CtxField::Risk => {
                let r = self.signals.score();
                let v = r.exact().ok_or_else(|| self.risk_reason())?;
                Dynamic::from(i64::from(v))
            }
            CtxField::Signal(k) => match self
                .signals
                .get(*k, stepup_dsl::model::DEFAULT_COUNTRY_WINDOW_DAYS)
            {
                Tri::True => Dynamic::TRUE,
                Tri::False => Dynamic::FALSE,
                Tri::Unknown => return Err(self.signals.unknown_reason(*k)),
            },
            CtxField::Operation => text(self.operation().unwrap_or("")),
            CtxField::Resource => text(self.resource().unwrap_or("")),
            CtxField::Event => Dynamic::from(self.req.event.kind()),
            CtxField::Enrolled => {
                let enrolled: rhai::Array = Factor::ALL
                    .into_iter()
                    .filter(|f| self.req.enrolled.contains(*f))
                    .map(|f| Dynamic::from(f.as_str()))
                    .collect();
                Dynamic::from_array(enrolled)
            }
            CtxField::Attr(name) => {
                match (self.tenant.attributes.get(name), self.req.event.attr(name)) {
                    // A number is a float, whole or not: as an integer, `ctx.amount / 100 > 50`
                    // divided 5099 as a whole number (50) and 5000.5 as a fraction (50.005), so
                    // the larger amount passed (a review's finding). Rhai compares and computes
                    // floats with integer literals.
                    (Some(AttrType::Number), Some(Value::Number(x))) if x.is_finite() => {
                        Dynamic::from(*x)
                    }
                    (Some(AttrType::String), Some(Value::Str(v))) => text(v),
                    (Some(AttrType::Bool), Some(Value::Bool(b))) => Dynamic::from(*b),
                    _ => return Err(self.attr_reason(name)),
                }
            }
        })
    }
}
