//! Diagnostics: errors and lints with a file, a span, a label and a help, rendered as
//! plain text (stable, used in snapshots), coloured text (terminals) or JSON.
//!
//! We render ourselves rather than through miette's graphical handler so that the plain form
//! is byte-stable for snapshot tests and identical in the CLI, the studio and CI logs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

/// A source file, shared by every node and diagnostic that points into it.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The name shown to users (usually the path).
    pub name: String,
    /// The text (lossily decoded when the file is not UTF-8: the error says so).
    pub text: String,
}

/// A byte range into a [`SourceFile`]. Spans never take part in equality, so two trees that
/// differ only in layout compare equal.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Span {
    /// A span from `start` to `end`.
    #[must_use]
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Information about the other diagnostics (how many were left out): never an error.
    Note,
    /// A lint: the set still loads.
    Warning,
    /// The set does not load.
    Error,
}

/// One finding, located in a file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code (`E002`, `S001`, ...).
    pub code: &'static str,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// Short text under the underline.
    pub label: String,
    /// What to do about it.
    pub help: Option<String>,
    /// The file.
    pub file: Arc<SourceFile>,
    /// The offending text.
    pub span: Span,
}

/// Start offsets of every line of a text: line numbers in logarithmic time.
#[derive(Debug, Clone, Default)]
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    /// Indexes a text.
    #[must_use]
    pub fn new(text: &str) -> Self {
        let mut v = vec![0];
        // `match_indices` finds each line feed with a vectorized search, not byte by byte.
        v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(v)
    }
    /// The 1-based line of a byte offset.
    #[must_use]
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|s| *s <= offset).max(1)
    }
    /// The byte offset where a 1-based line starts (0 for line 0 or 1).
    #[must_use]
    pub fn line_start(&self, line: usize) -> usize {
        self.0.get(line.saturating_sub(1)).copied().unwrap_or(0)
    }
    /// The text of a 1-based line, without its line ending (as [`str::lines`] gives it).
    #[must_use]
    pub fn line_text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let start = self.line_start(line).min(text.len());
        let end = self
            .0
            .get(line)
            .map_or(text.len(), |next| next - 1)
            .max(start);
        let l = text.get(start..end).unwrap_or("");
        l.strip_suffix('\r').unwrap_or(l)
    }
}

/// Line and column lookups into one text, for rendering many diagnostics of one file: the line
/// starts are indexed once, and a column is counted from the previous lookup when it lies
/// further on the same line, so diagnostics rendered in position order cost time linear in the
/// text, however long its lines.
#[derive(Debug)]
pub struct Locator<'t> {
    text: &'t str,
    lines: LineIndex,
    /// The last lookup: byte offset, line and column.
    last: (usize, usize, usize),
}

impl<'t> Locator<'t> {
    /// Indexes a text.
    #[must_use]
    pub fn new(text: &'t str) -> Self {
        Locator {
            text,
            lines: LineIndex::new(text),
            last: (0, 1, 1),
        }
    }
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let line = self.lines.line(offset);
        let start = self.lines.line_start(line);
        let (last_offset, last_line, last_col) = self.last;
        let (from, col) = if last_line == line && (start..=offset).contains(&last_offset) {
            (last_offset, last_col)
        } else {
            (start, 1)
        };
        let col = col + self.text.get(from..offset).map_or(0, |s| s.chars().count());
        self.last = (offset, line, col);
        (line, col)
    }
    /// The byte offset where a 1-based line starts.
    #[must_use]
    pub fn line_start(&self, line: usize) -> usize {
        self.lines.line_start(line)
    }
    /// The text of a 1-based line, without its line ending.
    #[must_use]
    pub fn line_text(&self, line: usize) -> &'t str {
        self.lines.line_text(self.text, line)
    }
}

/// 1-based line and column (in characters) of a byte offset.
#[must_use]
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = text.get(..offset).unwrap_or("");
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Diagnostic {
    /// An error.
    #[must_use]
    pub fn error(
        code: &'static str,
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            label: String::new(),
            help: None,
            file: Arc::clone(file),
            span,
        }
    }
    /// A warning.
    #[must_use]
    pub fn warning(
        code: &'static str,
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }
    /// Sets the label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    /// Sets the help.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Sets the help if there is one.
    #[must_use]
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// Line and column where the span starts.
    #[must_use]
    pub fn location(&self) -> (usize, usize) {
        line_col(&self.file.text, self.span.start)
    }
    /// The underlined text.
    #[must_use]
    pub fn snippet(&self) -> &str {
        let t = &self.file.text;
        let s = floor_char_boundary(t, self.span.start.min(t.len()));
        let e = floor_char_boundary(t, self.span.end.min(t.len()).max(s));
        t.get(s..e).unwrap_or("")
    }

    /// Renders in the stable plain form:
    ///
    /// ```text
    /// error[E002]: unknown factor `totpp`
    ///  --> rules/acme.policy:3:40
    ///   |
    /// 3 | when risk >= 70 require aal3 factor totpp
    ///   |                                     ^^^^^ not a factor
    ///   = help: did you mean `totp`?
    /// ```
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        self.render_located(color, &mut Locator::new(&self.file.text))
    }

    /// Renders with a [`Locator`] over this diagnostic's file, shared by the diagnostics of one
    /// file so that the file is indexed once.
    #[must_use]
    pub fn render_located(&self, color: bool, at: &mut Locator<'_>) -> String {
        let (red, yellow, blue, bold, reset) = if color {
            (
                "\x1b[1;31m",
                "\x1b[1;33m",
                "\x1b[1;34m",
                "\x1b[1m",
                "\x1b[0m",
            )
        } else {
            ("", "", "", "", "")
        };
        let (sev, c) = match self.severity {
            Severity::Error => ("error", red),
            Severity::Warning => ("warning", yellow),
            Severity::Note => ("note", blue),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{c}{sev}[{}]{reset}{bold}: {}{reset}",
            self.code, self.message
        );
        if self.severity == Severity::Note || self.file.text.is_empty() {
            // A note is about the file, not a place in it; so is a diagnostic of a file with no
            // text to show (one not read).
            let _ = writeln!(out, " {blue}-->{reset} {}", self.file.name);
            if let Some(h) = &self.help {
                let h = h.replace('\n', "\n          ");
                let _ = writeln!(out, "  {blue}={reset} {bold}help{reset}: {h}");
            }
            return out;
        }
        let (line, col) = at.line_col(self.span.start);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}{blue}-->{reset} {}:{line}:{col}", self.file.name);
        let line_text = at.line_text(line);
        let in_line = self.span.start.saturating_sub(at.line_start(line));
        // Long lines (minified or binary input) are cut around the span so output stays readable.
        let (shown, shift) = clip_line(line_text, col - 1, in_line);
        let _ = writeln!(out, "{pad} {blue}|{reset}");
        let _ = writeln!(out, "{blue}{line}{reset} {blue}|{reset} {shown}");
        let avail = shown.chars().count().saturating_sub(col - 1 - shift).max(1);
        // Padded and underlined by display width: a wide character (CJK, most emoji) takes two
        // columns of a terminal, so the caret stays under its text.
        let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        let before: String = shown.chars().take(col - 1 - shift).collect();
        let span_text: String = self
            .snippet()
            .split('\n')
            .next()
            .unwrap_or("")
            .chars()
            .take(avail)
            // One column each, as the line shows them (see `clip_line`).
            .map(|c| {
                if c.is_control() || shown_as_replacement(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let carets = "^".repeat(width(&span_text).max(1));
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!(" {}", self.label)
        };
        let _ = writeln!(
            out,
            "{pad} {blue}|{reset} {}{c}{carets}{label}{reset}",
            " ".repeat(width(&before))
        );
        if let Some(h) = &self.help {
            // A help of several lines (a list) stays aligned under its first line.
            let h = h.replace('\n', &format!("\n{pad}         "));
            let _ = writeln!(out, "{pad} {blue}={reset} {bold}help{reset}: {h}");
        }
        out
    }

    /// The diagnostic as a JSON value.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let (line, column) = self.location();
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "label": self.label,
            "help": self.help,
            "file": self.file.name,
            "line": line,
            "column": column,
            "span": {"start": self.span.start, "end": self.span.end},
            "text": self.snippet(),
        })
    }
}

/// Whether `c` reorders or breaks what a terminal shows (bidirectional controls, invisible line
/// breaks: E040's): a snippet shows `�` in its place.
fn shown_as_replacement(c: char) -> bool {
    matches!(
        c,
        '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Characters of a long line shown around the span.
const SHOWN_CHARS: usize = 120;
/// Characters shown before the span when a long line is cut.
const SHOWN_BEFORE: usize = 40;

/// Shows at most 120 characters of a line around column `col` (0-based, at byte `at` of the
/// line); returns the text and how many characters were cut from the start. Only the
/// shown window is read, so a long line costs no more than a short one.
fn clip_line(line: &str, col: usize, at: usize) -> (String, usize) {
    // A control character shows as a space, and a character that reorders or breaks what a
    // terminal shows (bidirectional controls, invisible line breaks: E040's) as `�`, one
    // column each, so the caret stays under its text and the snippet reads as written.
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                c if shown_as_replacement(c) => '\u{fffd}',
                c if c.is_control() => ' ',
                c => c,
            })
            .collect()
    };
    if line.chars().nth(SHOWN_CHARS).is_none() {
        return (clean(line), 0);
    }
    let start = col.saturating_sub(SHOWN_BEFORE);
    // `at` is `col` characters into the line: step back to the first character shown.
    let at = floor_char_boundary(line, at.min(line.len()));
    let before = line.get(..at).unwrap_or("");
    let from = match col - start {
        0 => at,
        back => before
            .char_indices()
            .rev()
            .nth(back - 1)
            .map_or(0, |(i, _)| i),
    };
    let shown: String = line
        .get(from..)
        .unwrap_or("")
        .chars()
        .take(SHOWN_CHARS)
        .collect();
    (clean(&shown), start)
}

/// Renders a list of diagnostics and a summary line.
#[must_use]
pub fn render_all(diags: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    let mut at: Option<(&Arc<SourceFile>, Locator<'_>)> = None;
    for d in diags {
        let at = match &mut at {
            Some((f, l)) if Arc::ptr_eq(f, &d.file) => l,
            slot => &mut slot.insert((&d.file, Locator::new(&d.file.text))).1,
        };
        out.push_str(&d.render_located(color, at));
        out.push('\n');
    }
    out
}

/// Most diagnostics reported per file. A mangled or generated file can hold thousands of the
/// same mistake; past this many, one note says how many more there are, by code.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// The code of the note that says how many diagnostics of a file were left out.
pub const TRUNCATED: &str = "N001";

/// How many diagnostics [`cap_per_file`] left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hidden {
    /// Errors left out.
    pub errors: usize,
    /// Warnings left out.
    pub warnings: usize,
}

/// Keeps at most `max` diagnostics per file (errors first, then warnings, each in position
/// order) and adds to each file that had more one note counting the rest by code. `diags` are
/// grouped by file (as [`crate::load_sources`] sorts them); the output keeps their order.
#[must_use]
pub fn cap_per_file(diags: Vec<Diagnostic>, max: usize) -> (Vec<Diagnostic>, Hidden) {
    let mut out = Vec::with_capacity(diags.len().min(max + 1));
    let mut hidden = Hidden::default();
    let mut rest = diags.into_iter().peekable();
    while let Some(first) = rest.next() {
        let file = Arc::clone(&first.file);
        let mut group = vec![first];
        while let Some(d) = rest.next_if(|d| d.file.name == file.name) {
            group.push(d);
        }
        if group.len() <= max {
            out.extend(group);
            continue;
        }
        // Errors before warnings, each in position order: the errors are what stops a load.
        let mut order: Vec<usize> = (0..group.len()).collect();
        order.sort_by_key(|&i| (group.get(i).is_some_and(|d| !d.is_error()), i));
        let mut keep = vec![false; group.len()];
        for &i in order.iter().take(max) {
            if let Some(k) = keep.get_mut(i) {
                *k = true;
            }
        }
        let mut by_code: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut left_out = 0;
        for (d, k) in group.into_iter().zip(keep) {
            if k {
                out.push(d);
                continue;
            }
            left_out += 1;
            *by_code.entry(d.code).or_default() += 1;
            match d.severity {
                Severity::Error => hidden.errors += 1,
                Severity::Warning => hidden.warnings += 1,
                Severity::Note => {}
            }
        }
        let counts = by_code
            .iter()
            .map(|(code, n)| format!("{code} × {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            Diagnostic {
                severity: Severity::Note,
                ..Diagnostic::error(
                    TRUNCATED,
                    &file,
                    Span::new(0, 0),
                    format!(
                        "{left_out} more diagnostic{} in this file not shown",
                        if left_out == 1 { "" } else { "s" }
                    ),
                )
            }
            .help(format!(
                "only the first {max} are shown; not shown: {counts}"
            )),
        );
    }
    (out, hidden)
}
