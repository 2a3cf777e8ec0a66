//! S004 `long-aal3-elevation`: an AAL3 elevation stays valid longer than 15 minutes.

use stepup_core::{Aal, Requirement, Validity, format_duration};

use super::super::{AAL3_RECOMMENDED_SECS, Ctx};
use crate::ast::{self, ValidityAst};

/// Checks the validity of the checked requirement `req` of the clause `r` (a policy's, or the
/// tenant's `admin default`: its elevations are as long).
pub(in crate::check) fn long_aal3_elevation(cx: &mut Ctx<'_>, r: &ast::Require, req: &Requirement) {
    if req.aal == Aal::Aal3
        && let Validity::For(s) = req.validity
        && s > AAL3_RECOMMENDED_SECS
    {
        let span = match &r.validity {
            Some(ValidityAst::For(d)) => d.span,
            _ => r.span,
        };
        cx.warn(
            "S004",
            span,
            format!("an aal3 elevation kept for {}", format_duration(s)),
            "longer than 15 minutes",
            Some(
                "keep an aal3 elevation to 15 minutes at most (`for 15m`); 5 minutes is recommended for highly sensitive operations"
                    .into(),
            ),
        );
    }
}
