//! The canonical formatter. One layout, two-space indentation, comments kept (a comment inside
//! a condition moves above its policy), one blank line where the author left at least one.
//! The output re-parses to an equal syntax tree (property-tested).

use std::fmt::Write as _;

use stepup_core::format_duration;

use crate::ast::{
    Arg, Dur, Expr, Factors, File, Int, Item, Lit, Member, Policy, Require, RiskItem, ValidityAst,
};
use crate::diag::LineIndex;
use crate::diag::Span;
use crate::token::{self, TokenKind};

/// A comment in the source.
#[derive(Debug, Clone)]
struct Comment {
    start: usize,
    text: String,
}

/// Every `#` comment outside strings, from the language's one token stream.
fn comments(text: &str) -> Vec<Comment> {
    token::tokens(text)
        .filter(|t| t.kind == TokenKind::Comment)
        .map(|t| Comment {
            start: t.span.start,
            text: t.text(text).trim_end().to_string(),
        })
        .collect()
}

struct Fmt<'a> {
    out: String,
    text: Option<&'a str>,
    lines: LineIndex,
    comments: Vec<Comment>,
    next: usize,
}

/// Formats a file in the canonical layout, keeping the comments of `text` (its source).
#[must_use]
pub fn format_file(file: &File, text: &str) -> String {
    let mut f = Fmt {
        out: String::new(),
        text: Some(text),
        lines: LineIndex::new(text),
        comments: comments(text),
        next: 0,
    };
    f.file(file);
    f.out
}

/// Formats a syntax tree alone: no comments, no blank lines kept. Used for the policy-set hash.
#[must_use]
pub fn format_canonical(file: &File) -> String {
    let mut f = Fmt {
        out: String::new(),
        text: None,
        lines: LineIndex::default(),
        comments: Vec::new(),
        next: 0,
    };
    f.file(file);
    f.out
}

impl Fmt<'_> {
    fn line_of(&self, pos: usize) -> usize {
        if self.text.is_some() {
            self.lines.line(pos)
        } else {
            0
        }
    }

    /// Whether the source has a blank line between `from` and `to`.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        let Some(t) = self.text else { return false };
        let gap = t.get(from..to).unwrap_or("");
        // Only whitespace and comments lie between units; a blank line is two newlines with
        // nothing but spaces between them.
        gap.split('\n')
            .skip(1)
            .collect::<Vec<_>>()
            .split_last()
            .is_some_and(|(_, mid)| mid.iter().any(|l| l.trim().is_empty()))
    }

    fn flush_before(&mut self, pos: usize, level: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.start >= pos {
                break;
            }
            push_ind(&mut self.out, level);
            self.out.push_str(&c.text);
            self.out.push('\n');
            self.next += 1;
        }
    }

    fn trail(&mut self, end: usize) {
        if end == 0 {
            return;
        }
        let end_line = self.line_of(end.saturating_sub(1));
        // A comment trails the unit only when nothing but spaces lies between them (after a
        // unit and another on one line, it trails the other: a review saw a comment written
        // after a policy's `}` moved onto the attribute the line began with).
        // (A block's header is trailed from before its own `{`: that one may lie between too,
        // and nothing else — a `}` is another unit's end.)
        let only_spaces = |from: usize, to: usize| {
            self.text.is_none_or(|t| {
                t.get(from..to)
                    .is_some_and(|g| matches!(g.trim(), "" | "{"))
            })
        };
        if let Some(c) = self.comments.get(self.next)
            && c.start >= end.saturating_sub(1)
            && self.line_of(c.start) == end_line
            && only_spaces(end.min(c.start), c.start)
        {
            let text = c.text.clone();
            if self.out.ends_with('\n') {
                self.out.pop();
            }
            self.out.push_str("  ");
            self.out.push_str(&text);
            self.out.push('\n');
            self.next += 1;
        }
    }

    fn unit_start(&mut self, prev_end: Option<usize>, start: usize, level: usize) {
        if let Some(prev) = prev_end {
            let first = self
                .comments
                .get(self.next)
                .filter(|c| c.start < start)
                .map_or(start, |c| c.start);
            if self.text.is_none() && level == 0 || self.blank_between(prev, first) {
                self.out.push('\n');
            }
        }
        self.flush_before(start, level);
    }

    fn file(&mut self, file: &File) {
        let mut prev = None;
        for item in &file.items {
            let span = item_span(item);
            self.unit_start(prev, span.start, 0);
            match item {
                Item::Tenant(t) => {
                    push_all(&mut self.out, &["tenant ", &t.name.text, " {\n"]);
                    self.trail(t.name.span.end + 1);
                    self.members(&t.members, 1, t.name.span.end);
                    self.close(span, 0);
                }
                Item::Application(a) => {
                    push_all(
                        &mut self.out,
                        &["application ", &a.name.text, " of ", &a.tenant.text, " {\n"],
                    );
                    self.trail(a.tenant.span.end + 1);
                    self.members(&a.members, 1, a.tenant.span.end);
                    self.close(span, 0);
                }
                Item::Member(m) => self.member(m, 0),
            }
            prev = Some(span.end);
        }
        self.flush_before(usize::MAX, 0);
    }

    fn close(&mut self, span: Span, level: usize) {
        self.flush_before(span.end, level + 1);
        push_ind(&mut self.out, level);
        self.out.push_str("}\n");
        self.trail(span.end);
    }

    fn members(&mut self, members: &[Member], level: usize, open: usize) {
        let mut prev = None;
        let _ = open;
        for m in members {
            let span = member_span(m);
            self.unit_start(prev, span.start, level);
            self.member(m, level);
            prev = Some(span.end);
        }
    }

    fn member(&mut self, m: &Member, level: usize) {
        let span = member_span(m);
        let text = self.text;
        let out = &mut self.out;
        match m {
            Member::Duration(d) => {
                push_ind(out, level);
                out.push_str("duration ");
                push_dur(out, d, text);
                out.push('\n');
            }
            Member::Operation { name, class, .. } => {
                push_ind(out, level);
                push_all(out, &["operation ", &name.text, " ", class.as_str(), "\n"]);
            }
            Member::Resource(n) => {
                push_ind(out, level);
                push_all(out, &["resource ", &n.text, "\n"]);
            }
            Member::Attribute { name, ty } => {
                push_ind(out, level);
                push_all(out, &["attribute ", &name.text, ": ", &ty.text, "\n"]);
            }
            Member::FactorStrength { factor, aal } => {
                push_ind(out, level);
                push_all(
                    out,
                    &["factor ", &factor.text, " strength ", &aal.text, "\n"],
                );
            }
            Member::AdminDefault(None, _) => {
                push_ind(out, level);
                out.push_str("admin default off\n");
            }
            Member::AdminDefault(Some(r), _) => {
                push_ind(out, level);
                out.push_str("admin default ");
                push_require(out, r, text);
                out.push('\n');
            }
            Member::CacheOff(_) => {
                push_ind(out, level);
                out.push_str("cache off\n");
            }
            Member::Risk(items, _) => {
                push_ind(out, level);
                out.push_str("risk {\n");
                self.trail(span.start + 6);
                let mut prev = None;
                for item in items {
                    let s = risk_span(item);
                    self.unit_start(prev, s.start, level + 1);
                    let out = &mut self.out;
                    push_ind(out, level + 1);
                    match item {
                        RiskItem::Weight(n, w) => {
                            push_all(out, &["weight ", &n.text, " "]);
                            push_int(out, w, text);
                        }
                        RiskItem::MaxSpeed(v) => {
                            out.push_str("max_speed ");
                            push_int(out, v, text);
                            out.push_str(" km/h");
                        }
                        RiskItem::ThreatFeed(s) => {
                            out.push_str("threat_feed ");
                            push_quoted(out, &s.value);
                        }
                    }
                    out.push('\n');
                    let end = if let RiskItem::MaxSpeed(v) = item {
                        v.span.end + 5
                    } else {
                        s.end
                    };
                    self.trail(end);
                    prev = Some(s.end);
                }
                self.close(span, level);
                return;
            }
            Member::Policy(p) => {
                self.policy(p, level);
                return;
            }
        }
        self.trail(span.end);
    }

    fn policy(&mut self, p: &Policy, level: usize) {
        // Comments inside the policy move above it.
        self.flush_before(p.span.end, level);
        let text = self.text;
        let out = &mut self.out;
        push_ind(out, level);
        match &p.name {
            None => {
                out.push_str("when ");
                push_expr(out, &p.when, text);
                out.push(' ');
                push_require(out, &p.require, text);
                out.push('\n');
            }
            Some(n) => {
                out.push_str(match (p.is_override, p.report_only) {
                    (false, false) => "",
                    (true, false) => "override ",
                    (false, true) => "report_only ",
                    (true, true) => "override report_only ",
                });
                out.push_str("policy ");
                out.push_str(&n.text);
                if let Some(m) = &p.message {
                    out.push(' ');
                    push_quoted(out, &m.value);
                }
                out.push_str(" {\n");
                push_ind(out, level);
                out.push_str("  when ");
                push_expr(out, &p.when, text);
                out.push('\n');
                push_ind(out, level);
                out.push_str("  ");
                push_require(out, &p.require, text);
                out.push('\n');
                push_ind(out, level);
                out.push_str("}\n");
            }
        }
        self.trail(p.span.end);
    }
}

/// Appends two spaces per level.
fn push_ind(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Appends the pieces in order.
fn push_all(out: &mut String, pieces: &[&str]) {
    for p in pieces {
        out.push_str(p);
    }
}

/// A duration in its canonical unit, or as written when it has no value.
fn push_dur(out: &mut String, d: &Dur, text: Option<&str>) {
    match d.secs {
        Some(s) => out.push_str(&format_duration(s)),
        None => out.push_str(source(text, &d.span).unwrap_or("0s")),
    }
}

/// A whole number, or as written when it has no value.
fn push_int(out: &mut String, n: &Int, text: Option<&str>) {
    match n.value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str(source(text, &n.span).unwrap_or("0")),
    }
}

/// `require AAL [factor ...] [for D | every time]`.
fn push_require(out: &mut String, r: &Require, text: Option<&str>) {
    out.push_str("require ");
    out.push_str(&r.aal.text);
    match &r.factors {
        Factors::Unspecified => {}
        Factors::Any(_) => out.push_str(" factor any"),
        Factors::Not(n) => {
            out.push_str(" factor not ");
            out.push_str(&n.text);
        }
        Factors::List(l) => {
            out.push_str(" factor ");
            push_joined(out, l, "|", |out, n| out.push_str(&n.text));
        }
    }
    match &r.validity {
        None => {}
        Some(ValidityAst::For(d)) => {
            out.push_str(" for ");
            push_dur(out, d, text);
        }
        Some(ValidityAst::EveryTime(_)) => out.push_str(" every time"),
    }
}

fn item_span(i: &Item) -> Span {
    match i {
        Item::Tenant(t) => t.span,
        Item::Application(a) => a.span,
        Item::Member(m) => member_span(m),
    }
}

fn member_span(m: &Member) -> Span {
    match m {
        Member::Duration(d) => Span::new(d.span.start.saturating_sub(9), d.span.end),
        Member::Operation { span, .. }
        | Member::AdminDefault(_, span)
        | Member::Risk(_, span)
        | Member::CacheOff(span) => *span,
        Member::Resource(n) => Span::new(n.span.start.saturating_sub(9), n.span.end),
        Member::Attribute { name, ty } => {
            Span::new(name.span.start.saturating_sub(10), ty.span.end)
        }
        Member::FactorStrength { factor, aal } => {
            Span::new(factor.span.start.saturating_sub(7), aal.span.end)
        }
        Member::Policy(p) => p.span,
    }
}

fn risk_span(r: &RiskItem) -> Span {
    match r {
        RiskItem::Weight(n, w) => Span::new(n.span.start.saturating_sub(7), w.span.end),
        RiskItem::MaxSpeed(v) => Span::new(v.span.start.saturating_sub(10), v.span.end),
        RiskItem::ThreatFeed(s) => Span::new(s.span.start.saturating_sub(12), s.span.end),
    }
}

/// Quotes a string in the DSL's syntax.
#[must_use]
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// Appends [`quote`]`(s)`.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters that need no escape are copied whole.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            _ => continue,
        };
        out.push_str(s.get(run..i).unwrap_or(""));
        out.push_str(esc);
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or(""));
    out.push('"');
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    }
}

fn push_wrapped(out: &mut String, e: &Expr, paren: bool, text: Option<&str>) {
    if paren {
        out.push('(');
        push_expr(out, e, text);
        out.push(')');
    } else {
        push_expr(out, e, text);
    }
}

/// What `span` of the source says, when the source is known.
fn source<'t>(text: Option<&'t str>, span: &Span) -> Option<&'t str> {
    text.and_then(|t| t.get(span.start..span.end))
}

fn push_lit(out: &mut String, l: &Lit, text: Option<&str>) {
    match l {
        // A number too large for a double has no value to write (it would read `inf`, a
        // name): it is written as it was (the checker reports it, E018).
        Lit::Number(v, span) if !v.is_finite() => match source(text, span) {
            Some(s) => out.push_str(s),
            None => {
                let _ = write!(out, "{v}");
            }
        },
        Lit::Number(v, _) => push_number(out, *v),
        Lit::Str(s) => push_quoted(out, &s.value),
        Lit::Name(n) => out.push_str(&n.text),
    }
}

/// Appends `format!("{v}")`. A whole number (most are) is written as the integer it is, the
/// same digits without the float formatting; `-0` stays the float's.
fn push_number(out: &mut String, v: f64) {
    // Below 2^53 every whole double is exact, and `{v}` writes its digits, no exponent.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if v.fract() == 0.0 && v.abs() < EXACT && !(v == 0.0 && v.is_sign_negative()) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a whole number below 2^53 in magnitude converts exactly"
        )]
        let n = v as i64;
        let _ = write!(out, "{n}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Formats a condition with the fewest parentheses that keep its shape.
#[must_use]
pub fn expr(e: &Expr) -> String {
    let mut out = String::new();
    push_expr(&mut out, e, None);
    out
}

/// Appends each of `items` with `push`, `sep` between two.
fn push_joined<T>(out: &mut String, items: &[T], sep: &str, mut push: impl FnMut(&mut String, &T)) {
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            out.push_str(sep);
        }
        push(out, item);
    }
}

/// Appends [`expr`]`(e)`, writing what has no value (a number too large, a duration that
/// overflows) as the source `text` has it.
fn push_expr(out: &mut String, e: &Expr, text: Option<&str>) {
    match e {
        Expr::Or(v) => push_joined(out, v, " or ", |out, a| {
            push_wrapped(out, a, prec(a) <= 1, text);
        }),
        Expr::And(v) => push_joined(out, v, " and ", |out, a| {
            push_wrapped(out, a, prec(a) <= 2, text);
        }),
        Expr::Not(a) => {
            // A run of `not`s is written at most `MAX_NOT_RUN` at a time, the parser's bound: a
            // longer one (written through parentheses in the source) keeps a pair of them every
            // `MAX_NOT_RUN`, so the formatted text parses to the same condition.
            let mut inner = a;
            out.push_str("not ");
            let mut run = 1;
            while let Expr::Not(b) = &**inner {
                if run == crate::syntax::MAX_NOT_RUN {
                    break;
                }
                out.push_str("not ");
                run += 1;
                inner = b;
            }
            push_wrapped(out, inner, prec(inner) <= 3, text);
        }
        Expr::Cmp(n, op, l) => {
            push_all(out, &[&n.text, " ", op.as_str(), " "]);
            push_lit(out, l, text);
        }
        Expr::In(n, items, _) => {
            out.push_str(&n.text);
            out.push_str(" in [");
            push_joined(out, items, ", ", |out, l| push_lit(out, l, text));
            out.push(']');
        }
        Expr::Call(n, args, _) => {
            out.push_str(&n.text);
            out.push('(');
            push_joined(out, args, ", ", |out, a| match a {
                // A duration that overflows is written as it was (the checker reports it).
                Arg::Duration(d) => push_dur(out, d, text),
                Arg::Name(n) => out.push_str(&n.text),
            });
            out.push(')');
        }
        Expr::Flag(n) => out.push_str(&n.text),
        Expr::Script(s) => {
            out.push_str("script ");
            push_quoted(out, &s.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_number;

    #[test]
    fn numbers_are_written_as_their_float_display() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -2.25,
            1e15,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_993.0,
            1e21,
            1e300,
            f64::MIN_POSITIVE,
            123_456.789,
        ];
        let mut x = 1.0_f64;
        for _ in 0..200 {
            x *= -1.37;
            values.extend([x, x.trunc(), x.round() + 0.125]);
        }
        for v in values {
            let mut out = String::new();
            push_number(&mut out, v);
            assert_eq!(out, format!("{v}"), "{v:?}");
        }
    }
}
