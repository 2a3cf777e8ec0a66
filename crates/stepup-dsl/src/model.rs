//! The checked policy model: names resolved, types checked, scripts compiled. This is what the
//! engine compiles and what the reference interpreter reads; it knows nothing of syntax.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use stepup_core::{Aal, FactorSet, OperationClass, Requirement, StrengthTable, Validity};

use crate::script::Script;
pub use crate::vocab::{
    CmpOp, DEFAULT_COUNTRY_WINDOW_DAYS, DEFAULT_MAX_SPEED_KMH, FIRST_ACCESS, RiskConfig, SignalKind,
};

/// The default validity of an elevation when a tenant does not say (15 minutes).
pub const DEFAULT_VALIDITY_SECS: u64 = 15 * 60;
/// Message used when a policy has none (and lint S002 says so).
pub const DEFAULT_MESSAGE: &str = "We need to re-verify your identity for this action.";
/// Name of the built-in policy for `admin` operations.
pub const ADMIN_DEFAULT_POLICY: &str = "admin_default";

/// Type of a request attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    /// A number.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
}

/// A typed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// All of them.
    And(Vec<Cond>),
    /// Any of them.
    Or(Vec<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// The event is an operation whose name is in the set.
    OperationIn(BTreeSet<String>),
    /// The event is an operation of this class.
    OperationClassIs(OperationClass),
    /// The event is an access to a resource class in the set.
    ResourceIn(BTreeSet<String>),
    /// The risk score compared with a number.
    Risk(CmpOp, f64),
    /// A number attribute compared with a number (absent attribute: false).
    AttrNum(String, CmpOp, f64),
    /// A string attribute equal to one of the values (absent attribute: false).
    AttrStrIn(String, BTreeSet<String>),
    /// A boolean attribute equal to the value (absent attribute: false).
    AttrBool(String, bool),
    /// A risk signal; `days` is the window of `new_country`.
    Signal(SignalKind, u32),
    /// No access to the resource class (ever, or within the window in days).
    FirstAccess(String, Option<u32>),
    /// A rhai script (compiled at load).
    Script(Arc<Script>),
}

impl Cond {
    /// Whether the condition is false whenever the event is not an operation (conservative:
    /// `false` when unsure). An operation test guards an `and`; an `or` is guarded when each
    /// branch is; `not` guards nothing.
    #[must_use]
    pub fn only_on_operations(&self) -> bool {
        match self {
            Cond::OperationIn(_) | Cond::OperationClassIs(_) => true,
            Cond::And(v) => v.iter().any(Cond::only_on_operations),
            Cond::Or(v) => !v.is_empty() && v.iter().all(Cond::only_on_operations),
            _ => false,
        }
    }

    /// Visits every leaf.
    pub fn for_each_leaf<'c>(&'c self, f: &mut impl FnMut(&'c Cond)) {
        match self {
            Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| c.for_each_leaf(f)),
            Cond::Not(a) => a.for_each_leaf(f),
            leaf => f(leaf),
        }
    }
}

/// Where a policy comes from, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name (bare rules: `<file stem>#<n>`, or `<application>#<n>` in an application block;
    /// unique in the tenant, and never the name of a tenant policy an application would replace).
    pub name: String,
    /// The user-facing message, if written.
    pub message: Option<String>,
    /// When it fires (shared: an application with `cache off` holds a copy of each of its
    /// tenant's policies with the same condition, lowered once).
    pub condition: Arc<Cond>,
    /// What it requires.
    pub requirement: Requirement,
    /// Where it was written.
    pub origin: Origin,
    /// `report_only`: evaluated with the others and reported with every decision (what it would
    /// have done), never enforced.
    pub report_only: bool,
}

impl Policy {
    /// The message users see.
    #[must_use]
    pub fn message_or_default(&self) -> &str {
        self.message.as_deref().unwrap_or(DEFAULT_MESSAGE)
    }
}

/// A tenant: catalogs, defaults, risk configuration and policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Its name.
    pub name: String,
    /// Default validity of an elevation.
    pub default_validity: Validity,
    /// Operation catalog (empty: any operation name is accepted).
    pub operations: BTreeMap<String, OperationClass>,
    /// Resource classes (empty: any resource is accepted).
    pub resources: BTreeSet<String>,
    /// Typed request attributes.
    pub attributes: BTreeMap<String, AttrType>,
    /// Factor strength table with overrides applied.
    pub strengths: StrengthTable,
    /// Risk configuration.
    pub risk: RiskConfig,
    /// What `admin` operations require (`None`: `admin default off`).
    pub admin_default: Option<Requirement>,
    /// Policies in file order.
    pub policies: Vec<Arc<Policy>>,
}

impl Tenant {
    /// A tenant with every default.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Tenant {
            name: name.to_string(),
            default_validity: Validity::For(DEFAULT_VALIDITY_SECS),
            operations: BTreeMap::new(),
            resources: BTreeSet::new(),
            attributes: BTreeMap::new(),
            strengths: StrengthTable::default(),
            risk: RiskConfig::default(),
            admin_default: Some(Requirement {
                aal: Aal::Aal2,
                factors: FactorSet::ANY,
                validity: Validity::For(DEFAULT_VALIDITY_SECS),
            }),
            policies: Vec::new(),
        }
    }

    /// The built-in policy for `admin` operations, when the tenant has one: it declares `admin`
    /// operations and does not say `admin default off`.
    #[must_use]
    pub fn builtin_admin_policy(&self) -> Option<Policy> {
        let req = self.admin_default?;
        if !self
            .operations
            .values()
            .any(|c| *c == OperationClass::Admin)
        {
            return None;
        }
        Some(Policy {
            name: ADMIN_DEFAULT_POLICY.to_string(),
            message: Some(
                "We need to re-verify your identity for this administrative action.".to_string(),
            ),
            condition: Arc::new(Cond::OperationClassIs(OperationClass::Admin)),
            requirement: req,
            origin: Origin {
                file: "<built-in>".to_string(),
                line: 0,
            },
            report_only: false,
        })
    }
}

/// An application's overrides of its tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// `cache off`: every policy becomes `every time`.
    pub cache_off: bool,
    /// Its policies: replacements (same name as a tenant policy) and additions.
    pub policies: Vec<Arc<Policy>>,
}

/// The most policies a set's scopes hold in all: each tenant's (its built-in admin default
/// counted), and each application that changes them (its own policies or `cache off`) holds
/// its tenant's again with its own. Every scope is compiled apart: a review's 2,000
/// applications of one line each over a 2,000-policy tenant, 333 KB of text, took 62 s and
/// 1.4 GB to load (with `cache off`, 6.6 GB, before its copies shared their conditions).
pub const MAX_SCOPE_POLICIES: usize = 1_000_000;

/// The policies in force for one (tenant, application), admin default included.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// The application, if one was named.
    pub application: Option<&'a Application>,
    /// Policies in evaluation order.
    pub policies: Vec<Arc<Policy>>,
}

impl Resolved<'_> {
    /// The report-only policies in force, in evaluation order.
    pub fn report_only(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.iter().filter(|p| p.report_only)
    }
}

/// Why a (tenant, application) cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The tenant is not defined.
    UnknownTenant(String),
    /// The application is not defined for the tenant.
    UnknownApplication(String, String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::UnknownTenant(t) => write!(f, "tenant `{t}` is not defined by the rules"),
            ResolveError::UnknownApplication(t, a) => {
                write!(
                    f,
                    "application `{a}` of tenant `{t}` is not defined by the rules"
                )
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// A whole checked policy set.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Tenants by name.
    pub tenants: BTreeMap<String, Tenant>,
    /// Applications by (tenant, application).
    pub applications: BTreeMap<(String, String), Application>,
    /// SHA-256 of the canonical text of every file (comments and layout excluded) and of the
    /// threat feeds' merged ranges: it names the rules and the blocklists that decided. (32 hex
    /// digits, the first half of the digest; the engine refuses to compile a set whose hash
    /// is longer than 32 bytes.)
    pub hash: String,
}

impl PolicySet {
    /// The policies in force for `tenant` and `application` (`""` for none): application policies
    /// replace tenant policies of the same name, additions follow, and the admin default comes
    /// last (an application's `override policy admin_default` in its place).
    ///
    /// # Errors
    /// When the tenant or the application is not defined.
    pub fn resolve(&self, tenant: &str, application: &str) -> Result<Resolved<'_>, ResolveError> {
        let t = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ResolveError::UnknownTenant(tenant.to_string()))?;
        let app = if application.is_empty() {
            None
        } else {
            Some(
                self.applications
                    .get(&(tenant.to_string(), application.to_string()))
                    .ok_or_else(|| {
                        ResolveError::UnknownApplication(
                            tenant.to_string(),
                            application.to_string(),
                        )
                    })?,
            )
        };
        let mut policies: Vec<Arc<Policy>> = t.policies.clone();
        if let Some(app) = app {
            for p in &app.policies {
                if let Some(slot) = policies.iter_mut().find(|q| q.name == p.name) {
                    *slot = Arc::clone(p);
                } else {
                    policies.push(Arc::clone(p));
                }
            }
        }
        if let Some(builtin) = t.builtin_admin_policy() {
            // The checker allows a policy of that name only as an application's override.
            match policies.iter().position(|p| p.name == ADMIN_DEFAULT_POLICY) {
                Some(i) => {
                    let over = policies.remove(i);
                    policies.push(over);
                }
                None => policies.push(Arc::new(builtin)),
            }
        }
        if app.is_some_and(|a| a.cache_off) {
            for p in &mut policies {
                let mut q = (**p).clone();
                q.requirement.validity = Validity::EveryTime;
                *p = Arc::new(q);
            }
        }
        Ok(Resolved {
            tenant: t,
            application: app,
            policies,
        })
    }

    /// Every (tenant, application) pair the set defines, with `""` for the tenant alone.
    #[must_use]
    pub fn scopes(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .tenants
            .keys()
            .map(|t| (t.clone(), String::new()))
            .collect();
        v.extend(self.applications.keys().cloned());
        v
    }
}
