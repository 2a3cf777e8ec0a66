//! The rhai escape hatch. This module holds the project's one rhai constructor: a raw engine
//! with only the packages a predicate needs, an operation budget, depth and size limits,
//! strict variables, no modules, no functions, no `eval`, no printing. Scripts compile once,
//! when the policy set loads; they read a constant `ctx` map and must return a boolean.

use std::sync::LazyLock;

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicStringPackage, LogicPackage, Package,
};
use rhai::{AST, Dynamic, Engine, Map, Scope};

/// Operations a script may run per evaluation before it is stopped (and its policy fires).
pub const MAX_OPERATIONS: u64 = 10_000;
/// Longest script accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 4_096;

static ENGINE: LazyLock<Engine> = LazyLock::new(sandbox);

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
    e
}

fn scope_with(ctx: Map) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_constant("ctx", ctx);
    scope
}

/// A compiled script predicate.
pub struct Script {
    /// The source text.
    pub source: String,
    ast: AST,
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
    /// What rhai said.
    pub message: String,
    /// 1-based line within the script.
    pub line: Option<usize>,
    /// 1-based column within the line.
    pub column: Option<usize>,
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
            });
        }
        // At compile time `ctx` is a plain variable: as a constant, the optimizer would fold
        // `ctx.amount` against the empty map. At run time it is a constant (read-only).
        let mut scope = Scope::new();
        scope.push("ctx", Map::new());
        match ENGINE.compile_with_scope(&scope, source) {
            Ok(ast) => Ok(Script {
                source: source.to_string(),
                ast,
            }),
            Err(e) => Err(CompileError {
                message: e.err_type().to_string(),
                line: e.position().line(),
                column: e.position().position(),
            }),
        }
    }

    /// Runs the script against `ctx`.
    ///
    /// # Errors
    /// A runtime error, an exhausted budget, or a result that is not a boolean.
    pub fn eval(&self, ctx: Map) -> Result<bool, String> {
        let mut scope = scope_with(ctx);
        match ENGINE.eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast) {
            Ok(v) => v
                .as_bool()
                .map_err(|t| format!("script returned a {t}, not a boolean")),
            Err(e) => Err(match *e {
                rhai::EvalAltResult::ErrorTooManyOperations(_) => {
                    format!("script exceeded its budget of {MAX_OPERATIONS} operations")
                }
                other => other.to_string(),
            }),
        }
    }
}

/// Builds a `ctx` map value.
pub fn ctx_value<T: Into<Dynamic>>(v: T) -> Dynamic {
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_read_ctx_and_return_booleans() -> Result<(), String> {
        let s = Script::compile("ctx.amount > 10000 && ctx.account_age_days < 7")
            .map_err(|e| e.message)?;
        let mut m = Map::new();
        m.insert("amount".into(), Dynamic::from(20_000_i64));
        m.insert("account_age_days".into(), Dynamic::from(3_i64));
        assert_eq!(s.eval(m), Ok(true));
        Ok(())
    }

    #[test]
    fn an_endless_loop_is_stopped_by_the_budget() -> Result<(), String> {
        let s = Script::compile("loop {} true").map_err(|e| e.message)?;
        let err = s.eval(Map::new()).err().unwrap_or_default();
        assert!(err.contains("budget"), "{err}");
        Ok(())
    }

    #[test]
    fn unknown_variables_and_eval_do_not_compile() {
        assert!(Script::compile("amount > 3").is_err());
        assert!(Script::compile("eval(\"1\")").is_err());
    }
}
