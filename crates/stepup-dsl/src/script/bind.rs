//! Binds each `ctx` field a script reads to a variable of its own, once, when the script
//! compiles: `ctx.amount > 100000` runs as `‹ctx.amount› > 100000`, where `‹ctx.amount›` is a
//! constant the evaluation pushes with the field's value. No `ctx` map (nor `signals` / `attrs`
//! maps) is built per evaluation, and a read is one scope lookup instead of a property chain.
//!
//! The variables' names are not identifiers (`ctx.amount`, `ctx.signals.new_device`,
//! `ctx.attrs["a b"]`), so no script can declare, shadow or name one; they appear only in
//! runtime messages such as assigning to a constant.
//!
//! The rewrite visits every statement and expression of the script (a superset of what
//! [`rhai::AST::walk`] visits: `break` values too). Every `ctx` must be the root of a field
//! access; anything else is refused, so the rewritten script reads `ctx` only through the
//! variables, and exactly the fields [`super::Script::reads`] lists.

use rhai::{ASTFlags, Expr, ImmutableString, Position, Stmt};

use super::{CTX, CTX_BUILTINS, CompileError, CtxField, FieldRead, field_of, is_ctx, whole};

/// The variable that holds `field` in a compiled script.
pub(super) fn variable_name(field: &CtxField) -> ImmutableString {
    match field {
        CtxField::Attr(a)
            if rhai::is_valid_identifier(a) && !CTX_BUILTINS.contains(&a.as_str()) =>
        {
            format!("ctx.{a}").into()
        }
        // `{:?}` quotes and escapes: `ctx.attrs["a.b"]` cannot be mistaken for another field.
        CtxField::Attr(a) => format!("ctx.attrs[{a:?}]").into(),
        other => other.to_string().into(),
    }
}

fn variable(field: &CtxField, pos: Position) -> Expr {
    Expr::Variable(Box::new((None, variable_name(field))), None, pos)
}

fn unanalysable() -> CompileError {
    CompileError {
        message: whole("this script uses `ctx` in a way that cannot be analysed"),
        line: None,
        column: None,
        width: 1,
    }
}

/// Rewrites `stmts` in place; `sites` gains the fields read where [`super::analyse`] did not look.
pub(super) fn bind(stmts: &mut [Stmt], sites: &mut Vec<FieldRead>) -> Result<(), CompileError> {
    stmts.iter_mut().try_for_each(|s| stmt(s, sites))
}

fn declares_ctx(name: &str, pos: Position) -> Result<(), CompileError> {
    if name == CTX {
        return Err(CompileError::at(
            "`ctx` cannot be declared again: it holds the request".to_string(),
            pos,
            1,
        ));
    }
    Ok(())
}

fn flow(x: &mut rhai::FlowControl, sites: &mut Vec<FieldRead>) -> Result<(), CompileError> {
    expr(&mut x.expr, sites)?;
    bind(x.body.statements_mut(), sites)?;
    bind(x.branch.statements_mut(), sites)
}

fn stmt(s: &mut Stmt, sites: &mut Vec<FieldRead>) -> Result<(), CompileError> {
    match s {
        Stmt::Noop(..) => Ok(()),
        Stmt::If(x, ..) | Stmt::While(x, ..) | Stmt::Do(x, ..) => flow(x, sites),
        // Refused wherever it is (SPEC §10: a caught error would be an answer, not unknown).
        Stmt::TryCatch(_, pos) => Err(super::try_refused(*pos)),
        // Refused wherever it is (SPEC §10: it would match a value of another type silently).
        Stmt::Switch(_, pos) => Err(super::switch_refused(*pos)),
        Stmt::For(x, pos) => {
            let (var, counter, body) = &mut **x;
            declares_ctx(&var.name, *pos)?;
            if let Some(c) = counter {
                declares_ctx(&c.name, *pos)?;
            }
            flow(body, sites)
        }
        Stmt::Var(x, _, pos) => {
            declares_ctx(&x.0.name, *pos)?;
            expr(&mut x.1, sites)
        }
        Stmt::Assignment(x) => {
            expr(&mut x.1.lhs, sites)?;
            expr(&mut x.1.rhs, sites)
        }
        Stmt::FnCall(f, ..) => f.args.iter_mut().try_for_each(|a| expr(a, sites)),
        Stmt::Block(b) => bind(b.statements_mut(), sites),
        Stmt::Expr(e) => expr(e, sites),
        Stmt::BreakLoop(e, ..) | Stmt::Return(e, ..) => match e {
            Some(e) => expr(e, sites),
            None => Ok(()),
        },
        _ => Err(unanalysable()),
    }
}

/// Where `ctx` is the root of the access chain `e`.
fn ctx_root(e: &Expr) -> Option<Position> {
    match e {
        Expr::Dot(x, ..) | Expr::Index(x, ..) if is_ctx(&x.lhs) => Some(x.lhs.position()),
        _ => None,
    }
}

/// An expression evaluated on its own (not a link inside an access chain).
fn expr(e: &mut Expr, sites: &mut Vec<FieldRead>) -> Result<(), CompileError> {
    if let Some(ctx_pos) = ctx_root(e) {
        // `ctx.f`, `ctx.attrs.f`, ...: the variable of `f`, followed by what followed the
        // name in the chain (`ctx.enrolled.len()` → `‹ctx.enrolled›.len()`).
        let (read, rest) = field_of(e, ctx_pos)?;
        let var = variable(&read.field, ctx_pos);
        let bound = match rest {
            None => var,
            Some(rest) => {
                let mut rest = rest.clone();
                if let Expr::Dot(y, ..) | Expr::Index(y, ..) = &mut rest {
                    y.lhs = var;
                }
                rest
            }
        };
        if !sites.iter().any(|s| s.field == read.field) {
            sites.push(read);
        }
        *e = bound;
        return match e {
            Expr::Dot(y, opts, _) | Expr::Index(y, opts, _) => link(&mut y.rhs, *opts, sites),
            _ => Ok(()),
        };
    }
    match e {
        Expr::Variable(v, _, pos) if v.1.as_str() == CTX => Err(CompileError::at(
            whole("`ctx` is used here as a whole"),
            *pos,
            CTX.len(),
        )),
        Expr::DynamicConstant(..)
        | Expr::BoolConstant(..)
        | Expr::IntegerConstant(..)
        | Expr::FloatConstant(..)
        | Expr::CharConstant(..)
        | Expr::StringConstant(..)
        | Expr::Unit(..)
        | Expr::Variable(..)
        | Expr::ThisPtr(..)
        | Expr::Property(..) => Ok(()),
        Expr::InterpolatedString(v, ..) | Expr::Array(v, ..) => {
            v.iter_mut().try_for_each(|e| expr(e, sites))
        }
        Expr::Map(x, ..) => x.0.iter_mut().try_for_each(|(_, e)| expr(e, sites)),
        Expr::And(v, ..) | Expr::Or(v, ..) | Expr::Coalesce(v, ..) => {
            v.iter_mut().try_for_each(|e| expr(e, sites))
        }
        Expr::FnCall(f, ..) | Expr::MethodCall(f, ..) => {
            f.args.iter_mut().try_for_each(|a| expr(a, sites))
        }
        Expr::Stmt(b) => bind(b.statements_mut(), sites),
        Expr::Dot(x, opts, _) | Expr::Index(x, opts, _) => {
            expr(&mut x.lhs, sites)?;
            link(&mut x.rhs, *opts, sites)
        }
        _ => Err(unanalysable()),
    }
}

/// The right side of a chain node with options `opts`. Unless the chain ends there (`BREAK`),
/// a `Dot`/`Index` there is the chain's next link: its left side is a property, a method call
/// or an index, read by the chain (so a `ctx` there is `ctx` as a whole, as in `m[ctx].f`).
fn link(e: &mut Expr, opts: ASTFlags, sites: &mut Vec<FieldRead>) -> Result<(), CompileError> {
    match e {
        Expr::Dot(y, next, _) | Expr::Index(y, next, _) if !opts.intersects(ASTFlags::BREAK) => {
            let next = *next;
            expr(&mut y.lhs, sites)?;
            link(&mut y.rhs, next, sites)
        }
        other => expr(other, sites),
    }
}
