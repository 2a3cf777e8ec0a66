//! The canonical formatter. One layout, two-space indentation, comments kept (a comment inside
//! a condition moves above its policy), one blank line where the author left at least one.
//! The output re-parses to an equal syntax tree (property-tested).

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

fn ind(level: usize) -> String {
    "  ".repeat(level)
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
            let line = format!("{}{}\n", ind(level), c.text);
            self.out.push_str(&line);
            self.next += 1;
        }
    }

    fn trail(&mut self, end: usize) {
        if end == 0 {
            return;
        }
        let end_line = self.line_of(end.saturating_sub(1));
        if let Some(c) = self.comments.get(self.next)
            && c.start >= end.saturating_sub(1)
            && self.line_of(c.start) == end_line
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
                    self.out.push_str(&format!("tenant {} {{\n", t.name.text));
                    self.trail(t.name.span.end + 1);
                    self.members(&t.members, 1, t.name.span.end);
                    self.close(span, 0);
                }
                Item::Application(a) => {
                    self.out.push_str(&format!(
                        "application {} of {} {{\n",
                        a.name.text, a.tenant.text
                    ));
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
        self.out.push_str(&format!("{}}}\n", ind(level)));
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

    fn dur(&self, d: &Dur) -> String {
        match d.secs {
            Some(s) => format_duration(s),
            None => self
                .text
                .and_then(|t| t.get(d.span.start..d.span.end))
                .unwrap_or("0s")
                .to_string(),
        }
    }

    fn int(&self, n: &Int) -> String {
        match n.value {
            Some(v) => v.to_string(),
            None => self
                .text
                .and_then(|t| t.get(n.span.start..n.span.end))
                .unwrap_or("0")
                .to_string(),
        }
    }

    fn member(&mut self, m: &Member, level: usize) {
        let i = ind(level);
        let span = member_span(m);
        match m {
            Member::Duration(d) => self.out.push_str(&format!("{i}duration {}\n", self.dur(d))),
            Member::Operation { name, class, .. } => {
                self.out
                    .push_str(&format!("{i}operation {} {}\n", name.text, class.as_str()))
            }
            Member::Resource(n) => self.out.push_str(&format!("{i}resource {}\n", n.text)),
            Member::Attribute { name, ty } => self
                .out
                .push_str(&format!("{i}attribute {}: {}\n", name.text, ty.text)),
            Member::FactorStrength { factor, aal } => self.out.push_str(&format!(
                "{i}factor {} strength {}\n",
                factor.text, aal.text
            )),
            Member::AdminDefault(None, _) => self.out.push_str(&format!("{i}admin default off\n")),
            Member::AdminDefault(Some(r), _) => {
                let r = self.require(r);
                self.out.push_str(&format!("{i}admin default {r}\n"));
            }
            Member::CacheOff(_) => self.out.push_str(&format!("{i}cache off\n")),
            Member::Risk(items, _) => {
                self.out.push_str(&format!("{i}risk {{\n"));
                self.trail(span.start + 6);
                let mut prev = None;
                for item in items {
                    let s = risk_span(item);
                    self.unit_start(prev, s.start, level + 1);
                    let j = ind(level + 1);
                    let line = match item {
                        RiskItem::Weight(n, w) => format!("{j}weight {} {}\n", n.text, self.int(w)),
                        RiskItem::MaxSpeed(v) => format!("{j}max_speed {} km/h\n", self.int(v)),
                        RiskItem::ThreatFeed(s) => format!("{j}threat_feed {}\n", quote(&s.value)),
                    };
                    self.out.push_str(&line);
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
        let i = ind(level);
        let when = expr_in(&p.when, self.text);
        let req = self.require(&p.require);
        match &p.name {
            None => self.out.push_str(&format!("{i}when {when} {req}\n")),
            Some(n) => {
                let ov = match (p.is_override, p.report_only) {
                    (false, false) => "",
                    (true, false) => "override ",
                    (false, true) => "report_only ",
                    (true, true) => "override report_only ",
                };
                let msg = p
                    .message
                    .as_ref()
                    .map(|m| format!(" {}", quote(&m.value)))
                    .unwrap_or_default();
                self.out.push_str(&format!(
                    "{i}{ov}policy {}{msg} {{\n{i}  when {when}\n{i}  {req}\n{i}}}\n",
                    n.text
                ));
            }
        }
        self.trail(p.span.end);
    }

    fn require(&self, r: &Require) -> String {
        let mut s = format!("require {}", r.aal.text);
        match &r.factors {
            Factors::Unspecified => {}
            Factors::Any(_) => s.push_str(" factor any"),
            Factors::Not(n) => s.push_str(&format!(" factor not {}", n.text)),
            Factors::List(l) => s.push_str(&format!(
                " factor {}",
                l.iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join("|")
            )),
        }
        match &r.validity {
            None => {}
            Some(ValidityAst::For(d)) => s.push_str(&format!(" for {}", self.dur(d))),
            Some(ValidityAst::EveryTime(_)) => s.push_str(" every time"),
        }
        s
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
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    }
}

fn wrap(e: &Expr, paren: bool, text: Option<&str>) -> String {
    if paren {
        format!("({})", expr_in(e, text))
    } else {
        expr_in(e, text)
    }
}

/// What `span` of the source says, when the source is known.
fn source<'t>(text: Option<&'t str>, span: &Span) -> Option<&'t str> {
    text.and_then(|t| t.get(span.start..span.end))
}

fn lit(l: &Lit, text: Option<&str>) -> String {
    match l {
        // A number too large for a double has no value to write (it would read `inf`, a
        // name): it is written as it was (the checker reports it, E018).
        Lit::Number(v, span) if !v.is_finite() => {
            source(text, span).map_or_else(|| format!("{v}"), str::to_string)
        }
        Lit::Number(v, _) => format!("{v}"),
        Lit::Str(s) => quote(&s.value),
        Lit::Name(n) => n.text.clone(),
    }
}

/// Formats a condition with the fewest parentheses that keep its shape.
#[must_use]
pub fn expr(e: &Expr) -> String {
    expr_in(e, None)
}

/// [`expr`], writing what has no value (a number too large, a duration that overflows) as the
/// source `text` has it.
fn expr_in(e: &Expr, text: Option<&str>) -> String {
    match e {
        Expr::Or(v) => v
            .iter()
            .map(|a| wrap(a, prec(a) <= 1, text))
            .collect::<Vec<_>>()
            .join(" or "),
        Expr::And(v) => v
            .iter()
            .map(|a| wrap(a, prec(a) <= 2, text))
            .collect::<Vec<_>>()
            .join(" and "),
        Expr::Not(a) => format!("not {}", wrap(a, prec(a) < 3, text)),
        Expr::Cmp(n, op, l) => format!("{} {} {}", n.text, op.as_str(), lit(l, text)),
        Expr::In(n, items, _) => format!(
            "{} in [{}]",
            n.text,
            items
                .iter()
                .map(|l| lit(l, text))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Call(n, args, _) => format!(
            "{}({})",
            n.text,
            args.iter()
                .map(|a| match a {
                    // A duration that overflows is written as it was (the checker reports it).
                    Arg::Duration(d) => d.secs.map_or_else(
                        || source(text, &d.span).unwrap_or("0s").to_string(),
                        format_duration,
                    ),
                    Arg::Name(n) => n.text.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Flag(n) => n.text.clone(),
        Expr::Script(s) => format!("script {}", quote(&s.value)),
    }
}
