//! S006 `risk-threshold-out-of-range`: a risk comparison can never be true (the score is 0 to
//! 100).

use super::super::Ctx;
use crate::ast::CmpOp;
use crate::diag::Span;

/// Checks `risk op v`, written at `span` (the number).
pub(in crate::check) fn risk_threshold(cx: &mut Ctx<'_>, op: CmpOp, v: f64, span: Span) {
    let never = match op {
        CmpOp::Gt => v >= 100.0,
        CmpOp::Ge | CmpOp::Eq => v > 100.0,
        CmpOp::Lt => v <= 0.0,
        CmpOp::Le => v < 0.0,
        CmpOp::Ne => false,
    };
    if never || !v.is_finite() {
        cx.warn(
            "S006",
            span,
            format!(
                "`risk {} {v}` is never true: the score is 0 to 100",
                op.as_str()
            ),
            "out of range",
            Some("choose a threshold between 0 and 100".into()),
        );
    }
}
