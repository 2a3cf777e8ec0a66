//! The rhai escape hatch. This module holds the project's one rhai constructor: a raw engine
//! with only the packages a predicate needs, an operation budget, depth and size limits,
//! strict variables, no modules, no functions, no `eval`, no printing. Scripts compile once,
//! when the policy set loads; they read a constant `ctx` and must return a boolean.
//!
//! When a script compiles, the `ctx` fields it reads are taken from its syntax tree
//! ([`Script::reads`]): a script reads fields by name only (`ctx.amount`, `ctx["amount"]`,
//! `ctx.attrs.amount`, `ctx.signals.new_device`), so the engine can hand it exactly those
//! fields, each known and typed, and never `()` in place of a value (SPEC §10). Each field
//! read is then bound to a constant of its own ([`bind`]): an evaluation pushes one value per
//! field instead of building a `ctx` map.

mod bind;
#[cfg(test)]
mod bind_tests;

use std::cell::RefCell;
use std::sync::LazyLock;

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicStringPackage, LogicPackage, Package,
};
use rhai::{
    AST, ASTFlags, ASTNode, Dynamic, Engine, Expr, ImmutableString, Map, Position, Scope, Stmt,
};

use crate::model::SignalKind;

/// Operations a script may run per evaluation before it is stopped (and its policy fires). Each
/// operator counts as a function call (the strict comparisons below turn rhai's fast operators
/// off): `while i < 1000 { i += 1 }` takes about 8,000.
pub const MAX_OPERATIONS: u64 = 10_000;
/// Longest script accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 4_096;

static ENGINE: LazyLock<Engine> = LazyLock::new(sandbox);

/// The budget of a check-time probe (lint S010): a tenth of an evaluation's, as every load and
/// reload probes every script twice.
pub const PROBE_OPERATIONS: u64 = MAX_OPERATIONS / 10;

/// The sandbox with a probe's budget.
static PROBE_ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let mut e = sandbox();
    e.set_max_operations(PROBE_OPERATIONS);
    e
});

fn sandbox() -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(LogicPackage::new().as_shared_module());
    e.register_global_module(BasicStringPackage::new().as_shared_module());
    e.register_global_module(BasicArrayPackage::new().as_shared_module());
    e.register_global_module(BasicMapPackage::new().as_shared_module());
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_expr_depths(32);
    e.set_max_string_size(4_096);
    e.set_max_array_size(256);
    e.set_max_map_size(256);
    e.set_max_variables(64);
    e.set_strict_variables(true);
    e.disable_symbol("eval");
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    strict_comparisons(&mut e);
    strict_arithmetic(&mut e);
    e
}

/// Makes arithmetic on numbers that gives a number that is not finite an error (SPEC §10):
/// `0 / 0`, `x / 0` or an overflow of a float would otherwise flow on, and `max(0 / 0, 0)` is
/// `0`, where the failed computation must leave the script unknown and fire its policy. (Whole
/// numbers' own arithmetic is rhai's, checked: a division by zero or an overflow is an error.)
fn strict_arithmetic(e: &mut Engine) {
    fn finite(op: &str, r: f64) -> Result<f64, Box<rhai::EvalAltResult>> {
        if r.is_finite() {
            Ok(r)
        } else {
            Err(format!(
                "the arithmetic gave a number that is not finite (`{op}`: a division by zero, an overflow)"
            )
            .into())
        }
    }
    type Op = fn(f64, f64) -> f64;
    let ops: [(&str, Op); 6] = [
        ("+", |x, y| x + y),
        ("-", |x, y| x - y),
        ("*", |x, y| x * y),
        ("/", |x, y| x / y),
        ("%", |x, y| x % y),
        ("**", f64::powf),
    ];
    #[expect(
        clippy::cast_precision_loss,
        reason = "rhai computes an integer with a float as floats"
    )]
    for (op, f) in ops {
        e.register_fn(op, move |x: f64, y: f64| finite(op, f(x, y)));
        e.register_fn(op, move |x: f64, y: i64| finite(op, f(x, y as f64)));
        e.register_fn(op, move |x: i64, y: f64| finite(op, f(x as f64, y)));
    }
}

/// A value's type as a policy author names it (`a number`, `a string`, `a bool`...).
fn kind_of(v: &Dynamic) -> String {
    if v.is_int() || v.is_float() {
        "a number".to_string()
    } else if v.is_string() {
        "a string".to_string()
    } else if v.is_bool() {
        "a bool".to_string()
    } else if v.is_unit() {
        "nothing (`()`)".to_string()
    } else {
        format!("a {}", v.type_name())
    }
}

/// The comparison operators.
const COMPARISONS: [&str; 6] = ["==", "!=", "<", "<=", ">", ">="];

/// Comparisons between values of one type (numbers being one type): rhai's, registered so
/// that they are found before the catch-all below. A comparison whose operands do not order
/// (`$conv` gives `None`: a number that is not finite) is an error, not an answer.
macro_rules! compare_as {
    ($e:expr, $a:ty, $b:ty, $conv:expr) => {{
        let c = $conv;
        let ops: [(&str, fn(std::cmp::Ordering) -> bool); 6] = [
            ("==", std::cmp::Ordering::is_eq),
            ("!=", std::cmp::Ordering::is_ne),
            ("<", std::cmp::Ordering::is_lt),
            ("<=", std::cmp::Ordering::is_le),
            (">", std::cmp::Ordering::is_gt),
            (">=", std::cmp::Ordering::is_ge),
        ];
        for (op, holds) in ops {
            $e.register_fn(
                op,
                move |x: $a, y: $b| -> Result<bool, Box<rhai::EvalAltResult>> {
                    c(x, y).map(holds).ok_or_else(|| not_finite(op))
                },
            );
        }
    }};
}

/// The error of a comparison with a number that is not finite.
fn not_finite(op: &str) -> Box<rhai::EvalAltResult> {
    format!(
        "cannot compare a number that is not finite (`{op}`): the script's arithmetic failed (a division by zero, an overflow)"
    )
    .into()
}

/// Two numbers' order, when both are finite. Fields are finite and the script's arithmetic
/// refuses to make a number that is not ([`strict_arithmetic`]), but a literal too large to hold
/// (`1e999`) is infinite, and comparing it would answer what cannot be computed.
fn finite_order(x: f64, y: f64) -> Option<std::cmp::Ordering> {
    if x.is_finite() && y.is_finite() {
        x.partial_cmp(&y)
    } else {
        None
    }
}

/// Makes comparing values of two types an error (SPEC §10: a script that uses a field as
/// another type than it has is unknown, and its policy fires). rhai's own rule is that such
/// values are unequal and unordered, so `ctx.signals.new_device > 0` or `ctx.note > 1000`
/// (a string) would be `false` whatever the request says. With fast operators off, rhai looks
/// for a registered function first: one per operator for each type that compares (numbers
/// with numbers), then a catch-all for any other pair, which fails. Arrays and maps keep their
/// packages' `==` and `!=`; `in` and `contains` compare with `==`, so they fail the same way.
fn strict_comparisons(e: &mut Engine) {
    e.set_fast_operators(false);
    compare_as!(e, i64, i64, |x: i64, y: i64| Some(x.cmp(&y)));
    compare_as!(e, f64, f64, finite_order);
    #[expect(
        clippy::cast_precision_loss,
        reason = "rhai compares an integer with a float as floats"
    )]
    {
        compare_as!(e, i64, f64, |x: i64, y: f64| finite_order(x as f64, y));
        compare_as!(e, f64, i64, |x: f64, y: i64| finite_order(x, y as f64));
    }
    compare_as!(e, bool, bool, |x: bool, y: bool| Some(x.cmp(&y)));
    compare_as!(e, char, char, |x: char, y: char| Some(x.cmp(&y)));
    compare_as!(
        e,
        ImmutableString,
        ImmutableString,
        |x: ImmutableString, y: ImmutableString| Some(x.as_str().cmp(y.as_str()))
    );
    // A character compares with a string as the one-character string (rhai's rule).
    compare_as!(
        e,
        char,
        ImmutableString,
        |x: char, y: ImmutableString| Some(x.to_string().as_str().cmp(y.as_str()))
    );
    compare_as!(
        e,
        ImmutableString,
        char,
        |x: ImmutableString, y: char| Some(x.as_str().cmp(y.to_string().as_str()))
    );
    for op in COMPARISONS {
        e.register_fn(
            op,
            move |x: Dynamic, y: Dynamic| -> Result<bool, Box<rhai::EvalAltResult>> {
                Err(format!(
                    "{MISTYPED_START}{} with {} (`{op}`){MISTYPED_END}",
                    kind_of(&x),
                    kind_of(&y)
                )
                .into())
            },
        );
    }
}

/// How the error of a comparison between two types begins and ends (see [`mistyped`]).
const MISTYPED_START: &str = "cannot compare ";
const MISTYPED_END: &str = ": the script uses a value as another type than it has";

/// What a run's failure message says was compared (`a string with a number (`>`)`), when the
/// failure is a comparison between two types; `None` for any other failure.
#[must_use]
pub fn mistyped(message: &str) -> Option<&str> {
    let i = message.find(MISTYPED_START)?;
    let what = message.get(i + MISTYPED_START.len()..)?;
    what.find(MISTYPED_END).and_then(|end| what.get(..end))
}

thread_local! {
    /// A scope reused by the evaluations of this thread (it keeps its capacity; it is emptied
    /// before and after each one, so no value outlives its evaluation).
    static SCOPE: RefCell<Scope<'static>> = RefCell::new(Scope::new());
}

thread_local! {
    /// This thread's function-resolution cache (see [`Script::eval_with`]).
    static CACHES: RefCell<rhai::Caches> = const { RefCell::new(rhai::Caches::new()) };
}

/// The name of the map scripts read.
pub const CTX: &str = "ctx";

/// A field of `ctx` a script reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtxField {
    /// `ctx.risk` (number)
    Risk,
    /// `ctx.signals.<name>` (bool)
    Signal(SignalKind),
    /// `ctx.operation` (string; "" when the event is not an operation)
    Operation,
    /// `ctx.resource` (string; "" when the event is not an access)
    Resource,
    /// `ctx.event` (string: sign_in | operation | access)
    Event,
    /// `ctx.enrolled` (array of factor names)
    Enrolled,
    /// `ctx.<attr>` or `ctx.attrs.<attr>`: a request attribute
    Attr(String),
}

impl std::fmt::Display for CtxField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtxField::Risk => f.write_str("ctx.risk"),
            CtxField::Signal(k) => write!(f, "ctx.signals.{}", k.as_str()),
            CtxField::Operation => f.write_str("ctx.operation"),
            CtxField::Resource => f.write_str("ctx.resource"),
            CtxField::Event => f.write_str("ctx.event"),
            CtxField::Enrolled => f.write_str("ctx.enrolled"),
            CtxField::Attr(a) if CTX_BUILTINS.contains(&a.as_str()) => write!(f, "ctx.attrs.{a}"),
            CtxField::Attr(a) => write!(f, "ctx.{a}"),
        }
    }
}

/// Names of `ctx` that are not request attributes: the built-in fields, and the two maps.
pub const CTX_BUILTINS: [&str; 7] = [
    "risk",
    "operation",
    "resource",
    "event",
    "enrolled",
    "signals",
    "attrs",
];

/// A compiled script predicate.
pub struct Script {
    /// The source text.
    pub source: String,
    /// The script with each field read bound to its own variable.
    ast: AST,
    reads: Vec<CtxField>,
    /// The variable of each field of `reads`, in the same order.
    variables: Vec<ImmutableString>,
    sites: Vec<FieldRead>,
}

/// Why a script gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer<E> {
    /// A field it reads has no value (why, as the caller said): the script did not run.
    NotRun(E),
    /// It ran and failed: an error, an exhausted budget, or a result that is not a boolean.
    Failed(String),
}

/// Where a script reads a field (its first occurrence), for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRead {
    /// The field.
    pub field: CtxField,
    /// 1-based line of `ctx` within the script.
    pub line: Option<usize>,
    /// 1-based column of `ctx` within the line.
    pub column: Option<usize>,
    /// Characters from `ctx` to the end of the field's name (`ctx.amount`: 10).
    pub width: usize,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Script").field(&self.source).finish()
    }
}

impl PartialEq for Script {
    fn eq(&self, other: &Script) -> bool {
        self.source == other.source
    }
}

/// Why a script did not compile: the message and the 1-based column inside the script, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// What rhai said, or why the script's use of `ctx` is refused.
    pub message: String,
    /// 1-based line within the script.
    pub line: Option<usize>,
    /// 1-based column within the line.
    pub column: Option<usize>,
    /// How many characters the error covers from its column (1 when unknown).
    pub width: usize,
}

impl CompileError {
    fn at(message: String, pos: Position, width: usize) -> Self {
        CompileError {
            message,
            line: pos.line(),
            column: pos.position(),
            width: width.max(1),
        }
    }
}

/// One step of a `ctx` access chain: a name (`.name` or `["name"]`) or anything else.
enum Step<'a> {
    /// The name, where it starts, and how many characters it covers (`"name"]` for an index).
    Key(&'a str, Position, usize),
    Other(&'a Expr),
}

fn step(e: &Expr) -> Step<'_> {
    match e {
        Expr::Property(p, pos) => Step::Key(p.2.as_str(), *pos, p.2.chars().count()),
        Expr::StringConstant(s, pos) => Step::Key(s.as_str(), *pos, s.chars().count() + 3),
        other => Step::Other(other),
    }
}

/// The first step after `node` and the node that continues the chain, if any. `node` is a
/// `Dot` or `Index`; its right side is either the last step (with `BREAK`, or not a chain) or
/// a `Dot`/`Index` whose left side is the next step (how rhai 1.27 nests `a.b.c` and `a[b][c]`).
fn next(node: &Expr) -> Option<(Step<'_>, Option<&Expr>)> {
    let (Expr::Dot(x, opts, _) | Expr::Index(x, opts, _)) = node else {
        return None;
    };
    match &x.rhs {
        rhs @ (Expr::Dot(y, ..) | Expr::Index(y, ..)) if !opts.intersects(ASTFlags::BREAK) => {
            Some((step(&y.lhs), Some(rhs)))
        }
        last => Some((step(last), None)),
    }
}

fn is_ctx(e: &Expr) -> bool {
    matches!(e, Expr::Variable(v, ..) if v.1.as_str() == CTX)
}

fn whole(what: &str) -> String {
    format!("scripts read `ctx` fields by name, e.g. `ctx.amount`; {what}")
}

/// The field a `ctx` access chain reads, and the chain's node after the field's name, if the
/// chain goes on (`ctx.enrolled.len()`: the `Dot` of `enrolled` and `len()`); `node` is the
/// `Dot`/`Index` whose left side is `ctx`.
fn field_of(node: &Expr, ctx_pos: Position) -> Result<(FieldRead, Option<&Expr>), CompileError> {
    let Some((first, rest)) = next(node) else {
        return Err(CompileError::at(
            whole("`ctx` is used here as a whole"),
            ctx_pos,
            CTX.len(),
        ));
    };
    let (name, pos, width) = match first {
        Step::Key(n, p, w) => (n, p, w),
        Step::Other(Expr::MethodCall(f, _)) => {
            return Err(CompileError::at(
                whole(&format!(
                    "`ctx.{}()` uses `ctx` as a whole",
                    f.name.as_str()
                )),
                ctx_pos,
                CTX.len(),
            ));
        }
        Step::Other(_) => {
            return Err(CompileError::at(
                whole(
                    "a computed index such as `ctx[name]` is not allowed; write the field's name, e.g. `ctx[\"amount\"]`",
                ),
                ctx_pos,
                CTX.len(),
            ));
        }
    };
    // The access ends after the name it reads.
    let mut end = (pos, width);
    let mut rest = rest;
    let field = match name {
        "risk" => CtxField::Risk,
        "operation" => CtxField::Operation,
        "resource" => CtxField::Resource,
        "event" => CtxField::Event,
        "enrolled" => CtxField::Enrolled,
        "signals" | "attrs" => {
            let second = rest.and_then(next);
            let Some((Step::Key(inner, inner_pos, inner_width), after)) = second else {
                let example = if name == "signals" {
                    "ctx.signals.new_device"
                } else {
                    "ctx.attrs.amount"
                };
                return Err(CompileError::at(
                    format!(
                        "`ctx.{name}` is used here as a whole; read one field by name, e.g. `{example}`"
                    ),
                    pos,
                    name.len(),
                ));
            };
            end = (inner_pos, inner_width);
            rest = after;
            if name == "attrs" {
                CtxField::Attr(inner.to_string())
            } else if let Some(k) = SignalKind::parse(inner) {
                CtxField::Signal(k)
            } else {
                let names = SignalKind::ALL.map(SignalKind::as_str);
                let hint = stepup_core::did_you_mean(inner, names)
                    .map_or_else(String::new, |m| format!("; did you mean `{m}`?"));
                return Err(CompileError::at(
                    format!(
                        "unknown signal `ctx.signals.{inner}`{hint}{}",
                        if hint.is_empty() {
                            format!("; {}", SignalKind::script_help())
                        } else {
                            String::new()
                        }
                    ),
                    inner_pos,
                    inner.chars().count(),
                ));
            }
        }
        attr => CtxField::Attr(attr.to_string()),
    };
    let width = match (
        ctx_pos.line(),
        ctx_pos.position(),
        end.0.line(),
        end.0.position(),
    ) {
        (Some(l1), Some(c1), Some(l2), Some(c2)) if l1 == l2 && c2 >= c1 => c2 - c1 + end.1,
        _ => CTX.len(),
    };
    Ok((
        FieldRead {
            field,
            line: ctx_pos.line(),
            column: ctx_pos.position(),
            width,
        },
        rest,
    ))
}

/// Why a script cannot use `switch`.
fn switch_refused(pos: Position) -> CompileError {
    CompileError::at(
        "`switch` is not available in scripts: it matches values of another type silently; compare with `==` or `in` (e.g. `ctx.tier in [\"gold\", \"vip\"]`)".to_string(),
        pos,
        "switch".len(),
    )
}

/// Why a script cannot use `try`.
fn try_refused(pos: Position) -> CompileError {
    CompileError::at(
        "`try` is not available in scripts: a script's error (a comparison of two types, an overflow, a division by zero) must leave its policy unknown, which fires it (fail closed), and `catch` would turn it into an answer".to_string(),
        pos,
        "try".len(),
    )
}

/// Where a script reads each `ctx` field (first occurrence); an error where it uses `ctx`
/// otherwise than by reading a field by name. Sound: every occurrence of the variable `ctx`
/// must be the root of a recognised field access.
fn analyse(ast: &AST) -> Result<Vec<FieldRead>, CompileError> {
    let mut sites: Vec<FieldRead> = Vec::new();
    let mut error: Option<CompileError> = None;
    let (mut uses, mut accesses) = (0usize, 0usize);
    ast.walk(&mut |path: &[ASTNode]| {
        let node = path.last();
        let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
        let result = match node {
            // `switch` picks its case by the value's hash, not by `==`: a value of another type
            // than its cases falls to the default silently (the comparisons below never run).
            // (The binding refuses it too, where this walk does not look: a `break` value.)
            Some(ASTNode::Stmt(Stmt::Switch(_, pos))) => Err(switch_refused(*pos)),
            // An error caught is an answer: the error that must fire the policy would not.
            Some(ASTNode::Stmt(Stmt::TryCatch(_, pos))) => Err(try_refused(*pos)),
            Some(ASTNode::Stmt(Stmt::Var(v, _, pos))) if v.0.name.as_str() == CTX => {
                Err(CompileError::at(
                    "`ctx` cannot be declared again: it holds the request".to_string(),
                    *pos,
                    1,
                ))
            }
            Some(ASTNode::Expr(e @ (Expr::Dot(x, ..) | Expr::Index(x, ..)))) if is_ctx(&x.lhs) => {
                accesses += 1;
                field_of(e, x.lhs.position()).map(|(f, _)| {
                    if !sites.iter().any(|s| s.field == f.field) {
                        sites.push(f);
                    }
                })
            }
            Some(ASTNode::Expr(e)) if is_ctx(e) => {
                uses += 1;
                let rooted = matches!(
                    parent,
                    Some(ASTNode::Expr(Expr::Dot(x, ..) | Expr::Index(x, ..)))
                        if std::ptr::eq(&x.lhs, *e)
                );
                if rooted {
                    Ok(())
                } else {
                    Err(CompileError::at(
                        whole("`ctx` is used here as a whole"),
                        e.position(),
                        CTX.len(),
                    ))
                }
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                error = Some(e);
                false
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if uses != accesses {
        // Every use was either the root of an access or an error above; a difference means the
        // tree has a shape this analysis does not know: refuse rather than guess.
        return Err(CompileError {
            message: whole("this script uses `ctx` in a way that cannot be analysed"),
            line: None,
            column: None,
            width: 1,
        });
    }
    Ok(sites)
}

impl Script {
    /// Compiles a script in the sandbox.
    ///
    /// # Errors
    /// The syntax error and its position in the script.
    pub fn compile(source: &str) -> Result<Script, CompileError> {
        if source.len() > MAX_SCRIPT_BYTES {
            return Err(CompileError {
                message: format!("script is longer than {MAX_SCRIPT_BYTES} bytes"),
                line: None,
                column: None,
                width: 1,
            });
        }
        // At compile time `ctx` is a plain variable: as a constant, the optimizer would fold
        // `ctx.amount` against the empty map. At run time it is a constant (read-only).
        let mut scope = Scope::new();
        scope.push("ctx", Map::new());
        match ENGINE.compile_with_scope(&scope, source) {
            Ok(ast) => {
                let mut sites = analyse(&ast)?;
                let mut statements = ast.statements().to_vec();
                bind::bind(&mut statements, &mut sites)?;
                let mut reads: Vec<CtxField> = sites.iter().map(|s| s.field.clone()).collect();
                reads.sort();
                let variables = reads.iter().map(bind::variable_name).collect();
                Ok(Script {
                    source: source.to_string(),
                    ast: AST::new(statements),
                    reads,
                    variables,
                    sites,
                })
            }
            Err(e) => Err(CompileError {
                message: e.err_type().to_string(),
                line: e.position().line(),
                column: e.position().position(),
                width: 1,
            }),
        }
    }

    /// The `ctx` fields the script reads, sorted and deduplicated (known when it compiled).
    #[must_use]
    pub fn reads(&self) -> &[CtxField] {
        &self.reads
    }

    /// The string constants the script holds, in source order: the names it may compare
    /// `ctx.operation` or `ctx.resource` with.
    #[must_use]
    pub fn strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::StringConstant(s, _))) = path.last() {
                out.push(s.to_string());
            }
            true
        });
        out
    }

    /// Where the script reads each field: its first occurrence, in source order.
    #[must_use]
    pub fn read_sites(&self) -> &[FieldRead] {
        &self.sites
    }

    /// Runs the script. `value` gives the value of each field it reads ([`Script::reads`], in
    /// that order), known and of the type the field is declared with; the script runs only
    /// when every field has one.
    ///
    /// # Errors
    /// [`NoAnswer::NotRun`] with `value`'s first error; [`NoAnswer::Failed`] on a runtime error,
    /// an exhausted budget, or a result that is not a boolean.
    pub fn eval_with<E>(
        &self,
        mut value: impl FnMut(&CtxField) -> Result<Dynamic, E>,
    ) -> Result<bool, NoAnswer<E>> {
        SCOPE.with(|scope| match scope.try_borrow_mut() {
            Ok(mut scope) => self.eval_in(&mut scope, &mut value),
            // Only if `value` itself ran a script: a scope of its own.
            Err(_) => self.eval_in(&mut Scope::new(), &mut value),
        })
    }

    fn eval_in<E>(
        &self,
        scope: &mut Scope<'static>,
        value: &mut impl FnMut(&CtxField) -> Result<Dynamic, E>,
    ) -> Result<bool, NoAnswer<E>> {
        scope.clear();
        let result = self.bind_and_run(scope, value);
        scope.clear();
        result
    }

    /// Runs the script as a check-time probe (lint S010): on an engine like the sandbox but with
    /// [`PROBE_OPERATIONS`], as rules are checked on every load and reload.
    ///
    /// # Errors
    /// As [`Script::eval_with`].
    pub fn probe_with<E>(
        &self,
        mut value: impl FnMut(&CtxField) -> Result<Dynamic, E>,
    ) -> Result<bool, NoAnswer<E>> {
        let mut scope = Scope::new();
        self.bind_values(&mut scope, &mut value)?;
        answer(
            PROBE_ENGINE.eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast),
            PROBE_OPERATIONS,
        )
    }

    /// Pushes the value of each field the script reads.
    fn bind_values<E>(
        &self,
        scope: &mut Scope<'static>,
        value: &mut impl FnMut(&CtxField) -> Result<Dynamic, E>,
    ) -> Result<(), NoAnswer<E>> {
        for (field, variable) in self.reads.iter().zip(&self.variables) {
            let v = value(field).map_err(NoAnswer::NotRun)?;
            if v.is_unit() {
                // Never from the engine, which passes known values: a script never sees `()`.
                return Err(NoAnswer::Failed(format!("`{field}` has no value")));
            }
            scope.push_constant_dynamic(variable.as_str(), v);
        }
        Ok(())
    }

    fn bind_and_run<E>(
        &self,
        scope: &mut Scope<'static>,
        value: &mut impl FnMut(&CtxField) -> Result<Dynamic, E>,
    ) -> Result<bool, NoAnswer<E>> {
        self.bind_values(scope, value)?;
        // A fresh runtime state per evaluation (its operation count is the budget's), and this
        // thread's function-resolution cache, kept across evaluations: which registered function
        // an operator on two types calls is the same for every script of the one engine (scripts
        // define no functions), and resolving it anew each time cost more than the script.
        let mut global = ENGINE.new_global_runtime_state();
        let run = CACHES.with(|caches| match caches.try_borrow_mut() {
            #[expect(deprecated, reason = "rhai's one entry point that takes the caches")]
            Ok(mut caches) => {
                ENGINE.eval_statements_raw(&mut global, &mut caches, scope, self.ast.statements())
            }
            Err(_) => ENGINE.eval_ast_with_scope::<Dynamic>(scope, &self.ast),
        });
        answer(run, MAX_OPERATIONS)
    }
}

/// A run's answer: its boolean, or why there is none.
fn answer<E>(
    run: Result<Dynamic, Box<rhai::EvalAltResult>>,
    budget: u64,
) -> Result<bool, NoAnswer<E>> {
    match run {
        Ok(v) => v
            .as_bool()
            .map_err(|t| NoAnswer::Failed(format!("script returned a {t}, not a boolean"))),
        Err(e) => Err(NoAnswer::Failed(match *e {
            rhai::EvalAltResult::ErrorTooManyOperations(_) => {
                format!("script exceeded its budget of {budget} operations")
            }
            other => other.to_string(),
        })),
    }
}

/// Builds a `ctx` map value.
pub fn ctx_value<T: Into<Dynamic>>(v: T) -> Dynamic {
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `s` with `fields`' values; a field missing from `fields` stops it from running.
    pub(super) fn run(
        s: &Script,
        fields: &[(CtxField, Dynamic)],
    ) -> Result<bool, NoAnswer<String>> {
        s.eval_with(|f| {
            fields
                .iter()
                .find(|(g, _)| g == f)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("`{f}` is absent"))
        })
    }

    #[test]
    fn scripts_read_ctx_and_return_booleans() -> Result<(), String> {
        let s = Script::compile("ctx.amount > 10000 && ctx.account_age_days < 7")
            .map_err(|e| e.message)?;
        let fields = [
            (attr("amount"), Dynamic::from(20_000_i64)),
            (attr("account_age_days"), Dynamic::from(3_i64)),
        ];
        assert_eq!(run(&s, &fields), Ok(true));
        Ok(())
    }

    #[test]
    fn an_endless_loop_is_stopped_by_the_budget() -> Result<(), String> {
        let s = Script::compile("loop {} true").map_err(|e| e.message)?;
        assert_eq!(
            run(&s, &[]),
            Err(NoAnswer::Failed(
                "script exceeded its budget of 10000 operations".to_string()
            ))
        );
        Ok(())
    }

    /// A comparison between two types is told apart from any other failure, by what it compared
    /// (lint S010 reports it so).
    #[test]
    fn a_mistyped_comparison_says_what_it_compared() -> Result<(), String> {
        let s = Script::compile("ctx.note > 1").map_err(|e| e.message)?;
        let Err(NoAnswer::Failed(m)) = run(&s, &[(attr("note"), Dynamic::from("x"))]) else {
            return Err("a string compared with a number must fail".into());
        };
        assert_eq!(
            super::mistyped(&m),
            Some("a string with a number (`>`)"),
            "{m}"
        );
        let endless = Script::compile("loop {} true").map_err(|e| e.message)?;
        let Err(NoAnswer::Failed(m)) = run(&endless, &[]) else {
            return Err("an endless loop must be stopped".into());
        };
        assert_eq!(super::mistyped(&m), None, "{m}");
        Ok(())
    }

    /// The budget is each evaluation's, with the thread's resolution cache kept across them:
    /// an endless loop is stopped every time, and a script that fits runs every time, whatever
    /// ran before it on the thread (a failure, a stopped loop, another script).
    #[test]
    fn the_budget_is_every_evaluations_own() -> Result<(), String> {
        let endless = Script::compile("loop {} true").map_err(|e| e.message)?;
        let fits = Script::compile("let i = 0; while i < 1000 { i += 1 } i == 1000")
            .map_err(|e| e.message)?;
        let fails = Script::compile("ctx.note > 1").map_err(|e| e.message)?;
        let note = [(attr("note"), Dynamic::from("x"))];
        let stopped = Err(NoAnswer::Failed(
            "script exceeded its budget of 10000 operations".to_string(),
        ));
        for _ in 0..3 {
            assert_eq!(run(&endless, &[]), stopped);
            assert_eq!(run(&fits, &[]), Ok(true));
            assert!(
                matches!(run(&fails, &note), Err(NoAnswer::Failed(m)) if m.contains("cannot compare"))
            );
            assert_eq!(run(&fits, &[]), Ok(true));
        }
        Ok(())
    }

    #[test]
    fn unknown_variables_and_eval_do_not_compile() {
        assert!(Script::compile("amount > 3").is_err());
        assert!(Script::compile("eval(\"1\")").is_err());
    }

    fn reads(src: &str) -> Result<Vec<CtxField>, CompileError> {
        Script::compile(src).map(|s| s.reads().to_vec())
    }

    pub(super) fn attr(n: &str) -> CtxField {
        CtxField::Attr(n.to_string())
    }

    #[test]
    fn fields_read_by_name_are_recorded_sorted_and_once() {
        assert_eq!(
            reads("ctx.amount > 10000 && ctx.account_age_days < 7 && ctx.amount < 1e9"),
            Ok(vec![attr("account_age_days"), attr("amount")])
        );
        assert_eq!(reads("ctx[\"amount\"] > 1"), Ok(vec![attr("amount")]));
        assert_eq!(reads("ctx.attrs.amount > 1"), Ok(vec![attr("amount")]));
        assert_eq!(
            reads("ctx.attrs[\"plan\"] == \"free\""),
            Ok(vec![attr("plan")])
        );
        assert_eq!(
            reads("ctx[\"attrs\"][\"plan\"] == \"x\""),
            Ok(vec![attr("plan")])
        );
        assert_eq!(
            reads("ctx.signals.new_device || ctx.signals[\"threat_intel\"]"),
            Ok(vec![
                CtxField::Signal(SignalKind::NewDevice),
                CtxField::Signal(SignalKind::ThreatIntel)
            ])
        );
        assert_eq!(
            reads(
                "ctx.risk > 10 && ctx.operation == \"payout\" && ctx.resource == \"\" \
                 && ctx.event == \"operation\" && \"webauthn\" in ctx.enrolled"
            ),
            Ok(vec![
                CtxField::Risk,
                CtxField::Operation,
                CtxField::Resource,
                CtxField::Event,
                CtxField::Enrolled
            ])
        );
        assert_eq!(reads("true"), Ok(vec![]));
    }

    #[test]
    fn each_field_is_located_at_its_first_read() -> Result<(), String> {
        let s = Script::compile("ctx.signals.new_device || ctx[\"amount\"] > ctx.amount")
            .map_err(|e| e.message)?;
        let sites: Vec<(String, Option<usize>, usize)> = s
            .read_sites()
            .iter()
            .map(|r| (r.field.to_string(), r.column, r.width))
            .collect();
        assert_eq!(
            sites,
            vec![
                ("ctx.signals.new_device".to_string(), Some(1), 22),
                ("ctx.amount".to_string(), Some(27), 13),
            ]
        );
        Ok(())
    }

    #[test]
    fn what_follows_a_field_is_the_scripts_business() {
        assert_eq!(reads("ctx.amount.abs() > 3"), Ok(vec![attr("amount")]));
        assert_eq!(reads("ctx[\"plan\"].len() > 3"), Ok(vec![attr("plan")]));
        assert_eq!(
            reads("ctx.enrolled[0] == \"totp\""),
            Ok(vec![CtxField::Enrolled])
        );
        assert_eq!(reads("ctx?.amount > 3"), Ok(vec![attr("amount")]));
        assert_eq!(
            reads("ctx.enrolled[ctx.index] == \"totp\""),
            Ok(vec![CtxField::Enrolled, attr("index")])
        );
        assert_eq!(
            reads("let a = ctx.amount; if a > 3 { ctx.plan == \"x\" } else { false }"),
            Ok(vec![attr("amount"), attr("plan")])
        );
        assert_eq!(reads("`${ctx.plan}` == \"x\""), Ok(vec![attr("plan")]));
    }

    #[track_caller]
    fn refused(src: &str, message: &str, column: usize) {
        let e = Script::compile(src).map(|s| s.reads().to_vec());
        assert!(e.is_err(), "`{src}` compiled, reading {e:?}");
        if let Err(e) = e {
            assert_eq!(e.message, message, "{src}");
            assert_eq!((e.line, e.column), (Some(1), Some(column)), "{src}");
        }
    }

    #[test]
    fn ctx_used_otherwise_than_by_field_name_does_not_compile() {
        let whole =
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; `ctx` is used here as a whole";
        refused("ctx == ctx", whole, 1);
        refused("true && \"amount\" in ctx", whole, 21);
        refused("let x = ctx; x.amount > 3", whole, 9);
        refused("ctx.len() > 3", "scripts read `ctx` fields by name, e.g. `ctx.amount`; `ctx.keys()` uses `ctx` as a whole".replace("keys", "len").as_str(), 1);
        refused(
            "ctx.keys().len() > 3",
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; `ctx.keys()` uses `ctx` as a whole",
            1,
        );
        refused(
            "let k = \"amount\"; ctx[k] > 3",
            "scripts read `ctx` fields by name, e.g. `ctx.amount`; a computed index such as `ctx[name]` is not allowed; write the field's name, e.g. `ctx[\"amount\"]`",
            19,
        );
        refused(
            "ctx.signals.len() > 0",
            "`ctx.signals` is used here as a whole; read one field by name, e.g. `ctx.signals.new_device`",
            5,
        );
        refused(
            "ctx.attrs == ctx.attrs",
            "`ctx.attrs` is used here as a whole; read one field by name, e.g. `ctx.attrs.amount`",
            5,
        );
        refused(
            "ctx.signals.new_devise",
            "unknown signal `ctx.signals.new_devise`; did you mean `new_device`?",
            13,
        );
        refused(
            "ctx.signals.velocity",
            "unknown signal `ctx.signals.velocity`; signals are `new_device`, `new_country`, `impossible_travel` and `threat_intel`",
            13,
        );
        refused(
            "let ctx = 1; ctx > 0",
            "`ctx` cannot be declared again: it holds the request",
            1,
        );
    }

    /// A field used as another type than it has is no answer (its policy fires, SPEC §10):
    /// rhai's own rule, that values of two types compare unequal and unordered, would make
    /// `ctx.signals.new_device > 0` false whatever the signal says.
    #[test]
    fn a_field_compared_as_another_type_is_no_answer() -> Result<(), String> {
        let flag = (CtxField::Signal(SignalKind::NewDevice), Dynamic::from(true));
        let note = (attr("note"), Dynamic::from("5000"));
        let amount = (attr("amount"), Dynamic::from(5_000.0_f64));
        let mismatched = [
            ("ctx.signals.new_device > 0", &flag),
            ("ctx.signals.new_device == 1", &flag),
            ("ctx.signals.new_device != \"yes\"", &flag),
            ("ctx.note > 1000", &note),
            ("ctx.note <= 1000", &note),
            ("ctx.note == 5000", &note),
            ("ctx.amount == \"5000\"", &amount),
            ("ctx.amount >= true", &amount),
            ("ctx.amount in [\"5000\"]", &amount),
            ("[\"5000\"].contains(ctx.amount)", &amount),
            ("ctx.note in [5000]", &note),
            ("!(ctx.signals.new_device < 1)", &flag),
        ];
        for (src, field) in mismatched {
            let s = Script::compile(src).map_err(|e| format!("{src}: {}", e.message))?;
            let got = run(&s, std::slice::from_ref(field));
            assert!(
                matches!(&got, Err(NoAnswer::Failed(m)) if m.contains("compare")),
                "{src}: {got:?}"
            );
        }
        // The same values, compared as what they are, decide as before.
        let typed = [
            ("ctx.note[0] == \"5\"", &note, true),
            ("\"5\" == ctx.note[0]", &note, true),
            ("ctx.note[1] < \"1\"", &note, true),
            ("'5' in [\"5\"]", &note, true),
            ("ctx.signals.new_device == true", &flag, true),
            ("ctx.signals.new_device != false", &flag, true),
            ("ctx.note == \"5000\"", &note, true),
            ("ctx.note < \"6\"", &note, true),
            ("ctx.note in [\"5000\", \"7\"]", &note, true),
            ("ctx.amount > 1000", &amount, true),
            ("ctx.amount >= 5000.0", &amount, true),
            ("ctx.amount == 5000", &amount, true),
            ("ctx.amount != 5000", &amount, false),
            ("ctx.amount in [1, 5000]", &amount, true),
            ("ctx.amount < 10 || ctx.amount > 100", &amount, true),
            ("2 > 1 && 'a' < 'b' && 1.5 < 2", &amount, true),
        ];
        for (src, field, want) in typed {
            let s = Script::compile(src).map_err(|e| format!("{src}: {}", e.message))?;
            assert_eq!(run(&s, std::slice::from_ref(field)), Ok(want), "{src}");
        }
        Ok(())
    }

    /// `switch` matches by hash, not `==`: `switch ctx.note { 5000 => ... }` on the string
    /// "5000" would take the default case silently. Scripts cannot use it.
    #[test]
    fn switch_is_not_available() {
        for src in [
            "switch ctx.signals.new_device { 1 => true, _ => false }",
            "switch ctx.note { 5000 => true, _ => false }",
            "let x = 2; switch x { 2 => true, _ => false }",
            // In a `break` value, where rhai's own walk does not look.
            "loop { break switch ctx.note { 5000 => true, _ => false }; }",
            "let n = ctx.note; loop { if true { break switch n { 5000 => true, _ => false } } }",
        ] {
            let e = Script::compile(src).map(|_| ());
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.message.starts_with("`switch` is not available")),
                "{src}: {e:?}"
            );
        }
    }

    /// Numbers divide as numbers, and a comparison with the result of a failed computation (a
    /// division by zero, an overflow: a number that is not finite) is an error, so its policy
    /// fires (SPEC §10), where `0 / 0 > 1` would be `false`.
    #[test]
    fn a_comparison_with_a_number_that_is_not_finite_is_an_error() {
        let amount = |x: f64| [(attr("amount"), Dynamic::from(x))];
        let answer = |src: &str, x: f64| match Script::compile(src) {
            Ok(s) => run(&s, &amount(x)),
            Err(e) => Err(NoAnswer::NotRun(format!("{src}: {}", e.message))),
        };
        assert_eq!(answer("ctx.amount / 100 > 50", 5099.0), Ok(true));
        assert_eq!(answer("ctx.amount / 1000 > 0.8", 900.0), Ok(true));
        assert_eq!(answer("ctx.amount == 5000", 5000.0), Ok(true));
        assert_eq!(answer("ctx.amount < 1e300 * 10.0", 1.0), Ok(true));
        for src in [
            "ctx.amount / 0 > 1",
            "ctx.amount / 0 < 1",
            "(ctx.amount - ctx.amount) / 0 > 1",
            "(ctx.amount - ctx.amount) / 0 != 1",
            "(ctx.amount + 1.0) * 1e300 * 1e300 > 0",
            "ctx.amount / 0 in [1.0, 2.0]",
            "1 > ctx.amount / 0.0",
            // `max` and `min` would turn the failed computation into a number.
            "max(ctx.amount / 0, 0) > 500",
            "min((ctx.amount - ctx.amount) / 0, 5) < 10",
            "(ctx.amount + 2.0) ** 10000 > 0",
            "(ctx.amount / 0).to_string() == \"inf\"",
        ] {
            for x in [0.0, 5000.0] {
                let r = answer(src, x);
                assert!(
                    matches!(&r, Err(NoAnswer::Failed(m)) if m.contains("not finite")),
                    "{src} at {x}: {r:?}"
                );
            }
        }
    }

    /// A review's finding: `try { r = ctx.tier > 3 } catch { r = false }` turned the error of
    /// comparing a string with a number (and an overflow, a division by zero) into `false`, so
    /// a larger payout did not fire the policy a smaller one did. Scripts cannot use `try`,
    /// wherever it is.
    #[test]
    fn try_is_not_available() {
        for src in [
            "let big = true; try { big = ctx.amount * 1000000 > 5000000000000 } catch { big = false } big",
            "let r = true; try { r = ctx.tier > 3 } catch { r = false } r",
            "let r = false; try { r = ctx.note > 1000; } catch (e) { r = false; } r",
            "try { 1 / 0 > 0 } catch { false }",
            // In a `break` value, where rhai's own walk does not look.
            "loop { break { let r = true; try { r = ctx.n > 1 } catch { r = false } r }; }",
            "let n = ctx.n; loop { if true { break { try { n > 1 } catch { false } } } }",
        ] {
            let e = Script::compile(src).map(|_| ());
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.message.starts_with("`try` is not available")),
                "{src}: {e:?}"
            );
        }
    }

    #[test]
    fn a_script_reading_declared_fields_still_runs() -> Result<(), String> {
        let s = Script::compile("ctx.attrs.amount > 5 && ctx.signals.new_device")
            .map_err(|e| e.message)?;
        let fields = [
            (CtxField::Signal(SignalKind::NewDevice), Dynamic::from(true)),
            (attr("amount"), Dynamic::from(9_i64)),
        ];
        assert_eq!(run(&s, &fields), Ok(true));
        Ok(())
    }
}
