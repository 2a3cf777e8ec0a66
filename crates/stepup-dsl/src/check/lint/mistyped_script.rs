//! S010 `mistyped-script`: a script compares a value with a value of another type.

use rhai::Dynamic;

use super::super::Ctx;
use super::super::expressions::script_span;
use crate::ast;
use crate::model::{AttrType, Tenant};
use crate::script::{CtxField, NoAnswer, Script};

/// A value of `field`'s type, as the engine hands it to a script: the first or the second of
/// two probes (zero, false and empty; then large, true and non-empty), so that most tests go
/// one way on the first and the other on the second. `None` for an
/// attribute the tenant does not declare (E029 says so).
fn probe(t: &Tenant, field: &CtxField, second: bool) -> Option<Dynamic> {
    let text = |s: &str| Some(Dynamic::from(s.to_string()));
    match field {
        CtxField::Risk => Some(Dynamic::from(if second { 100_i64 } else { 0 })),
        CtxField::Signal(_) => Some(Dynamic::from(second)),
        CtxField::Operation | CtxField::Resource => text(if second { "x" } else { "" }),
        CtxField::Event => text(if second { "sign_in" } else { "operation" }),
        CtxField::Enrolled => Some(Dynamic::from(if second {
            vec![Dynamic::from("totp".to_string())]
        } else {
            Vec::new()
        })),
        CtxField::Attr(a) => match t.attributes.get(a)? {
            // The engine hands every number as a float.
            AttrType::Number if second => Some(Dynamic::from(1.0e12_f64 + 0.5)),
            AttrType::Number => Some(Dynamic::from(0.0_f64)),
            AttrType::String => text(if second { "x" } else { "" }),
            AttrType::Bool => Some(Dynamic::from(second)),
        },
    }
}

/// Where a rhai runtime message says the error is: `(line L, position P)` at its end.
fn position(message: &str) -> (Option<usize>, Option<usize>) {
    let Some(rest) = message
        .rfind("(line ")
        .and_then(|i| message.get(i + 6..))
        .and_then(|r| r.strip_suffix(')'))
    else {
        return (None, None);
    };
    let mut parts = rest.split(", position ");
    let line = parts.next().and_then(|l| l.parse().ok());
    let column = parts.next().and_then(|c| c.parse().ok());
    (line, column)
}

/// S010: runs the script on two probes of the types its fields have; a comparison between two
/// types (which the sandbox makes an error: SPEC §10) means the script is unknown whenever it
/// gets there, and its policy fires. A warning: a probe may not reach every comparison. Probes
/// run with a tenth of the budget ([`crate::script::PROBE_OPERATIONS`]): the rules are checked
/// on every load and reload, not only by `stepup check`.
pub(in crate::check) fn mistyped_script(cx: &mut Ctx<'_>, t: &Tenant, s: &ast::Str, sc: &Script) {
    for second in [false, true] {
        let run = sc.probe_with(|f| probe(t, f, second).ok_or(()));
        let Err(NoAnswer::Failed(m)) = run else {
            continue;
        };
        let Some(what) = crate::script::mistyped(&m) else {
            continue;
        };
        let (line, column) = position(&m);
        cx.warn(
            "S010",
            script_span(cx.file, s, line, column, 1),
            format!(
                "this script compares {what}: values of two types do not compare, so the script is unknown there and its policy fires (fail closed)"
            ),
            "compares two types",
            Some(
                "compare a field with a value of its own type, e.g. `ctx.signals.new_device == true`, `ctx.amount > 1000`, `ctx.note == \"gold\"`"
                    .to_string(),
            ),
        );
        return;
    }
}
