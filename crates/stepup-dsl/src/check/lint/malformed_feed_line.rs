//! S009 `malformed-feed-line`: a line of a threat feed is neither an IP address nor a CIDR
//! range; it is skipped.

use super::super::Ctx;
use crate::ast;
use crate::feed::FeedWarnings;

/// The first malformed lines of feed `s` (those kept), one a line, then how many more.
fn listed_lines(s: &ast::Str, warnings: &FeedWarnings) -> String {
    let lines: Vec<String> = warnings
        .kept()
        .iter()
        .map(|w| format!("`{}:{}`: `{}`", s.value, w.line, w.text))
        .collect();
    let more = warnings.unlisted();
    if more > 0 {
        format!("{}\nand {more} more", lines.join("\n"))
    } else {
        lines.join("\n")
    }
}

/// Warns about the malformed lines of the feed named by `s` (one warning for all of them).
pub(in crate::check) fn malformed_feed_lines(
    cx: &mut Ctx<'_>,
    s: &ast::Str,
    warnings: &FeedWarnings,
) {
    match (warnings.len(), warnings.kept()) {
        (0, _) => {}
        (1, [w]) => cx.warn(
            "S009",
            s.span,
            format!(
                "`{}:{}`: `{}` {}; the line is skipped",
                s.value, w.line, w.text, w.why
            ),
            "malformed line",
            Some("fix or remove the line; `#` and `;` start comments".into()),
        ),
        _ => cx.warn(
            "S009",
            s.span,
            if warnings.only_mapped() == 0 {
                format!(
                    "{} lines of threat feed `{}` are not IP addresses or CIDR ranges; they are skipped",
                    warnings.len(),
                    s.value
                )
            } else {
                format!(
                    "{} lines of threat feed `{}` are not IP addresses or CIDR ranges, or are the \
                     IPv4-mapped block alone (which matches no address here); they are skipped",
                    warnings.len(),
                    s.value
                )
            },
            "malformed lines",
            Some(format!(
                "fix or remove them; `#` and `;` start comments:\n{}",
                listed_lines(s, warnings)
            )),
        ),
    }
}
