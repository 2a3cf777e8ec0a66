//! Diagnostics: errors and lints with a file, a span, a label and a help, rendered as
//! plain text (stable, used in snapshots), coloured text (terminals) or JSON.
//!
//! We render ourselves rather than through miette's graphical handler so that the plain form
//! is byte-stable for snapshot tests and identical in the CLI, the studio and CI logs.

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
        v.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex(v)
    }
    /// The 1-based line of a byte offset.
    #[must_use]
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|s| *s <= offset).max(1)
    }
}

/// 1-based line and column (in characters) of a byte offset.
#[must_use]
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
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
        };
        let text = &self.file.text;
        let (line, col) = self.location();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{c}{sev}[{}]{reset}{bold}: {}{reset}",
            self.code, self.message
        );
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}{blue}-->{reset} {}:{line}:{col}", self.file.name);
        let line_text = text.lines().nth(line - 1).unwrap_or("");
        // Long lines (minified or binary input) are cut around the span so output stays readable.
        let (shown, shift) = clip_line(line_text, col - 1);
        let _ = writeln!(out, "{pad} {blue}|{reset}");
        let _ = writeln!(out, "{blue}{line}{reset} {blue}|{reset} {shown}");
        let span_chars = self
            .snippet()
            .split('\n')
            .next()
            .unwrap_or("")
            .chars()
            .count()
            .max(1);
        let avail = shown.chars().count().saturating_sub(col - 1 - shift).max(1);
        let carets = "^".repeat(span_chars.min(avail));
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!(" {}", self.label)
        };
        let _ = writeln!(
            out,
            "{pad} {blue}|{reset} {}{c}{carets}{label}{reset}",
            " ".repeat(col - 1 - shift)
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

/// Shows at most 120 characters of a line around column `col` (0-based); returns the text and
/// how many characters were cut from the start.
fn clip_line(line: &str, col: usize) -> (String, usize) {
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let n = clean.chars().count();
    if n <= 120 {
        return (clean, 0);
    }
    let start = col.saturating_sub(40);
    (clean.chars().skip(start).take(120).collect(), start)
}

/// Renders a list of diagnostics and a summary line.
#[must_use]
pub fn render_all(diags: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(color));
        out.push('\n');
    }
    out
}
