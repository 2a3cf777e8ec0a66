//! The spanned syntax tree: what the author wrote, names still as text. Spans are left out of
//! equality, so `parse(format(x)) == x` compares meaning, not layout.

use crate::diag::Span;
/// The comparison operators are vocabulary shared with the model: defined in [`crate::vocab`].
pub use crate::vocab::CmpOp;

/// A name as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A string literal, unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    /// The value.
    pub value: String,
    /// Where it is (quotes included).
    pub span: Span,
}

/// A duration as written (`15m`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dur {
    /// Seconds, `None` when the number overflows.
    pub secs: Option<u64>,
    /// Where it is.
    pub span: Span,
}

/// A whole file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    /// Its items in order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a file holds few items; boxing would only add indirection"
)]
pub enum Item {
    /// `tenant NAME { ... }`.
    Tenant(TenantBlock),
    /// `application NAME of TENANT { ... }`.
    Application(AppBlock),
    /// A declaration or policy of tenant `default`, or inside a tenant block.
    Member(Member),
}

/// `tenant NAME { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantBlock {
    /// The tenant.
    pub name: Name,
    /// Its declarations and policies.
    pub members: Vec<Member>,
    /// The whole block.
    pub span: Span,
}

/// `application NAME of TENANT { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppBlock {
    /// The application.
    pub name: Name,
    /// The tenant it belongs to.
    pub tenant: Name,
    /// `cache off` and policies.
    pub members: Vec<Member>,
    /// The whole block.
    pub span: Span,
}

/// A member of a tenant or application block.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    /// `duration 15m`.
    Duration(Dur),
    /// `operation NAME CLASS`.
    Operation {
        /// The operation.
        name: Name,
        /// `routine`, `sensitive` or `admin`.
        class: stepup_core::OperationClass,
        /// The declaration.
        span: Span,
    },
    /// `resource NAME`.
    Resource(Name),
    /// `attribute NAME: TYPE`.
    Attribute {
        /// The attribute.
        name: Name,
        /// Its type, as written.
        ty: Name,
    },
    /// `factor NAME strength AAL`.
    FactorStrength {
        /// The factor, as written.
        factor: Name,
        /// The AAL, as written.
        aal: Name,
    },
    /// `admin default off` (`None`) or `admin default require ...`.
    AdminDefault(Option<Require>, Span),
    /// `risk { ... }`.
    Risk(Vec<RiskItem>, Span),
    /// `cache off` (applications only).
    CacheOff(Span),
    /// A policy.
    Policy(Policy),
}

/// An entry of a `risk { }` block.
#[derive(Debug, Clone, PartialEq)]
pub enum RiskItem {
    /// `weight SIGNAL N`.
    Weight(Name, Int),
    /// `max_speed N km/h`.
    MaxSpeed(Int),
    /// `threat_feed "path"`.
    ThreatFeed(Str),
}

/// A whole number as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Int {
    /// Its value, `None` if it overflows.
    pub value: Option<u64>,
    /// Where it is.
    pub span: Span,
}

/// A policy, named or bare.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `None` for a bare rule (named after its file and position when checked).
    pub name: Option<Name>,
    /// `override policy ...` (applications only).
    pub is_override: bool,
    /// `report_only policy ...`: evaluated and reported, never enforced.
    pub report_only: bool,
    /// The user-facing message.
    pub message: Option<Str>,
    /// The `when` condition.
    pub when: Expr,
    /// The `require` clause.
    pub require: Require,
    /// The whole policy.
    pub span: Span,
}

/// `require AAL [factor ...] [for D | every time]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Require {
    /// The AAL, as written.
    pub aal: Name,
    /// The factor constraint.
    pub factors: Factors,
    /// `for D` or `every time`, if written.
    pub validity: Option<ValidityAst>,
    /// The whole clause.
    pub span: Span,
}

/// A factor constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Factors {
    /// Nothing written: any factor.
    Unspecified,
    /// `factor any`.
    Any(Span),
    /// `factor not NAME`.
    Not(Name),
    /// `factor a|b|c`.
    List(Vec<Name>),
}

/// `for D` or `every time`.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidityAst {
    /// `for D`.
    For(Dur),
    /// `every time`.
    EveryTime(Span),
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A number.
    Number(f64, Span),
    /// A quoted string.
    Str(Str),
    /// A bare name (`payout`, `true`).
    Name(Name),
}

impl Lit {
    /// Where it is.
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Lit::Number(_, s) => *s,
            Lit::Str(s) => s.span,
            Lit::Name(n) => n.span,
        }
    }
}

/// An argument of a signal predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `30d`.
    Duration(Dur),
    /// `payments`.
    Name(Name),
}

impl Arg {
    /// Where it is.
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Arg::Duration(d) => d.span,
            Arg::Name(n) => n.span,
        }
    }
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a and b and ...`: chains are flat (and is associative), so long chains never nest deeply.
    And(Vec<Expr>),
    /// `a or b or ...`, flat.
    Or(Vec<Expr>),
    /// `not a`.
    Not(Box<Expr>),
    /// `x OP literal`.
    Cmp(Name, CmpOp, Lit),
    /// `x in [a, b]`.
    In(Name, Vec<Lit>, Span),
    /// `name(args)`.
    Call(Name, Vec<Arg>, Span),
    /// `name`.
    Flag(Name),
    /// `script "..."`.
    Script(Str),
}
