//! The values predicates read for one event: the event itself, the signals, the history and
//! scripts. Shared by the compiled tree and the reference interpreter, so both read the same
//! facts; they differ in how they walk the conditions.

use std::cell::RefCell;

use rhai::{Dynamic, Map};
use stepup_core::{Factor, OperationClass};
use stepup_dsl::ast::CmpOp;
use stepup_dsl::model::{SignalKind, Tenant};
use stepup_dsl::script::Script;

use crate::request::{Event, Request, Value};
use crate::risk::Signals;
use crate::state::UserHistory;
use crate::tri::Tri;

/// `value OP v` for a number attribute's value. Absent: false. Another type: unknown.
#[must_use]
pub fn num_value(value: Option<&Value>, op: CmpOp, v: f64) -> Tri {
    match value {
        None => Tri::False,
        Some(Value::Number(x)) if x.is_finite() => Tri::from(op.apply(x, &v)),
        Some(_) => Tri::Unknown,
    }
}

/// A string attribute's value in a set. Absent: false. Another type: unknown.
#[must_use]
pub fn str_value(value: Option<&Value>, set: &std::collections::BTreeSet<String>) -> Tri {
    match value {
        None => Tri::False,
        Some(Value::Str(s)) => Tri::from(set.contains(s)),
        Some(_) => Tri::Unknown,
    }
}

/// A boolean attribute's value equal to `b`. Absent: false. Another type: unknown.
#[must_use]
pub fn bool_value(value: Option<&Value>, b: bool) -> Tri {
    match value {
        None => Tri::False,
        Some(Value::Bool(x)) => Tri::from(*x == b),
        Some(_) => Tri::Unknown,
    }
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
    /// Script failures, for explanations and audit.
    pub script_errors: RefCell<Vec<String>>,
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
        match self.signals.score() {
            Some(s) => Tri::from(op.apply(&f64::from(s), &v)),
            None => Tri::Unknown,
        }
    }
    /// A signal.
    pub fn signal(&self, k: SignalKind, days: u32) -> Tri {
        self.signals.get(k, days)
    }
    /// `attr OP v` on a number attribute. Absent: false. Of another type: unknown (fail closed).
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
        match (h.accesses.get(resource), window_days) {
            (None, _) => Tri::True,
            (Some(_), None) => Tri::False,
            (Some(at), Some(d)) => Tri::from(self.req.now.since(*at) > i64::from(d) * 86_400),
        }
    }
    /// Runs a script; errors and exhausted budgets are unknown (the policy fires).
    pub fn script(&self, s: &Script) -> Tri {
        match s.eval(self.script_ctx(&s.source)) {
            Ok(b) => Tri::from(b),
            Err(e) => {
                self.script_errors.borrow_mut().push(format!(
                    "script `{}` failed: {e}; its policy fires",
                    s.source
                ));
                Tri::Unknown
            }
        }
    }

    /// The read-only `ctx` of a script. The risk score, the signals and the enrolled factors are
    /// computed only for scripts that name them (computing the signals is the expensive part);
    /// a script that reaches a field it does not name gets `()` and fails closed.
    fn script_ctx(&self, source: &str) -> Map {
        let mut m = Map::new();
        let opt = |s: Option<&str>| s.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_string()));
        m.insert("operation".into(), opt(self.operation()));
        m.insert("resource".into(), opt(self.resource()));
        m.insert(
            "event".into(),
            Dynamic::from(self.req.event.kind().to_string()),
        );
        if source.contains("risk") {
            m.insert(
                "risk".into(),
                self.signals
                    .score()
                    .map_or(Dynamic::UNIT, |s| Dynamic::from(i64::from(s))),
            );
        }
        let mut signals = Map::new();
        for k in SignalKind::ALL
            .into_iter()
            .filter(|_| source.contains("signals"))
        {
            let v = match self
                .signals
                .get(k, stepup_dsl::model::DEFAULT_COUNTRY_WINDOW_DAYS)
            {
                Tri::True => Dynamic::TRUE,
                Tri::False => Dynamic::FALSE,
                Tri::Unknown => Dynamic::UNIT,
            };
            signals.insert(k.as_str().into(), v);
        }
        if source.contains("signals") {
            m.insert("signals".into(), signals.into());
        }
        let enrolled: rhai::Array = Factor::ALL
            .into_iter()
            .filter(|f| source.contains("enrolled") && self.req.enrolled.contains(*f))
            .map(|f| Dynamic::from(f.as_str().to_string()))
            .collect();
        if source.contains("enrolled") {
            m.insert("enrolled".into(), enrolled.into());
        }
        let mut attrs = Map::new();
        if let Event::Operation { attrs: list, .. } = &self.req.event {
            for (k, v) in list {
                let d = match v {
                    Value::Bool(b) => Dynamic::from(*b),
                    // Scripts are integer-only when the number is whole (the common case: amounts).
                    Value::Number(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                        Dynamic::from(*x as i64)
                    }
                    Value::Number(x) => Dynamic::from(*x),
                    Value::Str(s) => Dynamic::from(s.clone()),
                };
                attrs.insert(k.as_str().into(), d.clone());
                if !m.contains_key(k.as_str()) {
                    m.insert(k.as_str().into(), d);
                }
            }
        }
        m.insert("attrs".into(), attrs.into());
        m
    }
}
