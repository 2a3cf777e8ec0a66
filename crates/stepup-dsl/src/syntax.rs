//! Text → pest pairs → spanned AST. Pest types never leave this module.
//!
//! Untrusted input is bounded before pest sees it: size, NUL bytes and nesting depth are
//! checked by a linear pre-scan, so no input can overflow the stack.

use std::sync::Arc;

use pest::Parser as _;
use pest::iterators::Pair;
use stepup_core::OperationClass;

use crate::ast::{
    AppBlock, Arg, CmpOp, Dur, Expr, Factors, File, Int, Item, Lit, Member, Name, Policy, Require,
    RiskItem, Str, TenantBlock, ValidityAst,
};
use crate::diag::{Diagnostic, SourceFile, Span};
use crate::token::{self, TokenKind};

/// Largest policy file accepted (8 MiB: 10,000 policies take about 4 MB).
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Deepest nesting of parentheses accepted in a condition.
pub const MAX_NESTING: usize = 64;
/// Longest run of `not` accepted before an operand.
pub const MAX_NOT_RUN: usize = 16;
/// Deepest condition accepted, counting its parentheses and its `not`s together: runs of `not`
/// at every level of parentheses would otherwise nest a condition 17 times deeper than its
/// parentheses, and every pass over it (checks, formatting, compiling, dropping it) recurses
/// once per level.
pub const MAX_CONDITION_DEPTH: usize = 2 * MAX_NESTING;

mod grammar {
    #![allow(
        missing_docs,
        reason = "pest_derive generates `Rule` from the documented grammar"
    )]
    #[derive(pest_derive::Parser)]
    #[grammar = "../../grammar/policy.pest"]
    pub(super) struct PolicyParser;
}
use grammar::{PolicyParser, Rule};

/// Which chain [`join`] builds.
#[derive(Clone, Copy)]
enum Joined {
    And,
    Or,
}

/// One operand alone, or the chain of several: an operand that is the same kind of chain is
/// spliced in (`(a and b) and c` is `a and b and c`).
fn join(kind: Joined, mut operands: Vec<Expr>) -> Expr {
    if operands.len() == 1
        && let Some(one) = operands.pop()
    {
        return one;
    }
    let nested = |e: &Expr| {
        matches!(
            (kind, e),
            (Joined::And, Expr::And(_)) | (Joined::Or, Expr::Or(_))
        )
    };
    if !operands.iter().any(nested) {
        // Nothing to flatten (the rule): the operands are the chain.
        return match kind {
            Joined::And => Expr::And(operands),
            Joined::Or => Expr::Or(operands),
        };
    }
    let mut items = Vec::with_capacity(operands.len());
    for e in operands {
        match (kind, e) {
            (Joined::And, Expr::And(v)) | (Joined::Or, Expr::Or(v)) => items.extend(v),
            (_, other) => items.push(other),
        }
    }
    match kind {
        Joined::And => Expr::And(items),
        Joined::Or => Expr::Or(items),
    }
}

/// Decodes raw bytes, reporting invalid UTF-8 with its position.
///
/// # Errors
/// The file as lossily decoded text, with the diagnostic.
pub fn decode(
    name: &str,
    bytes: &[u8],
) -> Result<Arc<SourceFile>, (Arc<SourceFile>, Box<Diagnostic>)> {
    match std::str::from_utf8(bytes) {
        // A byte order mark is no part of the text (`stepup_core::without_bom`).
        Ok(t) => Ok(Arc::new(SourceFile {
            name: name.to_string(),
            text: stepup_core::without_bom(t).to_string(),
        })),
        Err(e) => {
            let at = e.valid_up_to();
            let file = Arc::new(SourceFile {
                name: name.to_string(),
                text: String::from_utf8_lossy(bytes).into_owned(),
            });
            // Offsets shift by lossy replacement only after `at`, so `at` is still exact.
            let d = Diagnostic::error(
                "E021",
                &file,
                Span::new(at, at + 1),
                "this file is not valid UTF-8",
            )
            .label("invalid byte")
            .help("policy files are UTF-8 text; re-save the file as UTF-8");
            Err((file, Box::new(d)))
        }
    }
}

/// Parses one file into its syntax tree, collecting every syntax error it can report.
///
/// A large file is parsed in pieces on several threads (see [`pieces`]); its tree and its
/// diagnostics are the same as from one parse.
///
/// # Errors
/// The diagnostics, when the file cannot be parsed.
pub fn parse(file: &Arc<SourceFile>) -> Result<File, Vec<Diagnostic>> {
    // The core count is asked only of a file large enough to cut.
    let threads = if file.text.len() >= 2 * MIN_PIECE_BYTES {
        stepup_core::threads::cores()
    } else {
        1
    };
    parse_on(file, threads)
}

/// [`parse`] on up to `threads` threads (the loader shares the machine's between the files it
/// reads at once). A large file is cut into pieces of about [`MIN_PIECE_BYTES`] whatever the
/// threads: pest's token queue for a piece is about 16 times its text, and a queue this size is
/// memory the allocator keeps and reuses for the next piece, where a queue for half of a large
/// file is fresh memory from the system, zeroed page by page, on every load.
pub(crate) fn parse_on(file: &Arc<SourceFile>, threads: usize) -> Result<File, Vec<Diagnostic>> {
    parse_in(
        file,
        &pieces(&file.text, usize::MAX, MIN_PIECE_BYTES),
        threads,
        false,
    )
    .map(|(tree, _)| tree)
}

/// [`parse_on`], and the tree's canonical text ([`crate::fmt::format_canonical`], what the
/// set's hash covers). A file parsed in pieces has each piece's text made on the piece's thread:
/// the canonical text of a file is its top-level items' texts, one blank line between two, so
/// the whole file's is the pieces' joined the same way.
pub(crate) fn parse_canonical_on(
    file: &Arc<SourceFile>,
    threads: usize,
) -> Result<(File, String), Vec<Diagnostic>> {
    let (tree, canonical) = parse_in(
        file,
        &pieces(&file.text, usize::MAX, MIN_PIECE_BYTES),
        threads,
        true,
    )?;
    let canonical = canonical.unwrap_or_else(|| crate::fmt::format_canonical(&tree));
    Ok((tree, canonical))
}

/// The smallest piece of a file parsed on a thread of its own (below it, a thread costs more
/// than it saves), and about the size of a file's pieces.
pub(crate) const MIN_PIECE_BYTES: usize = 256 * 1024;

/// [`parse`], the file cut at `starts` (offsets of top-level `tenant` and `application`
/// blocks, ascending, as [`pieces`] finds them), the pieces parsed on up to `threads` threads;
/// with `canonical`, also the canonical text when the file was parsed in pieces (each made on
/// its piece's thread).
fn parse_in(
    file: &Arc<SourceFile>,
    starts: &[usize],
    threads: usize,
    canonical: bool,
) -> Result<(File, Option<String>), Vec<Diagnostic>> {
    prescan(file)?;
    let hashes: Vec<usize> = file.text.match_indices('#').map(|(i, _)| i).collect();
    let text = file.text.as_str();
    let bounds: Vec<(usize, usize)> = std::iter::once(0)
        .chain(starts.iter().copied())
        .zip(starts.iter().copied().chain(std::iter::once(text.len())))
        .collect();
    if bounds.len() < 2 {
        return parse_whole(file, &hashes).map(|tree| (tree, None));
    }
    // A piece whose parse panicked (a bug) counts as not parsed: the whole file is parsed.
    // Once a piece does not parse, the pieces not yet started are not parsed either (the whole
    // file will be, for its errors).
    let failed = std::sync::atomic::AtomicBool::new(false);
    let parsed: Vec<Option<Piece>> =
        stepup_core::threads::map_contained_on(&bounds, threads, |&(from, to)| {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let piece = parse_piece(file, &hashes, from, to);
            if piece.is_none() {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            // A piece with errors makes the file's an error: its text is never read.
            piece.map(|(tree, diags)| {
                let text =
                    (canonical && diags.is_empty()).then(|| crate::fmt::format_canonical(&tree));
                (tree, diags, text)
            })
        })
        .into_iter()
        .map(Option::flatten)
        .collect();
    let mut out = File::default();
    let mut diags = Vec::new();
    let mut texts = Vec::new();
    for p in parsed {
        // A piece that does not parse: the whole file is parsed as one, for the error exactly
        // as a parse of the whole file reports it.
        let Some((f, d, t)) = p else {
            return parse_whole(file, &hashes).map(|tree| (tree, None));
        };
        out.items.extend(f.items);
        diags.extend(d);
        texts.extend(t.filter(|t| !t.is_empty()));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    // Two top-level items are one blank line apart, within a piece and across two.
    let canonical = canonical.then(|| texts.join("\n"));
    Ok((out, canonical))
}

/// A piece of a file, parsed: its tree, the lowering's diagnostics, and its canonical text
/// when asked for and there are no diagnostics.
type Piece = (File, Vec<Diagnostic>, Option<String>);

/// Parses the bytes `from..to` of `file` as a file of their own, their spans offsets into the
/// whole file: the tree and the lowering's diagnostics, or `None` when pest finds a syntax error.
fn parse_piece(
    file: &Arc<SourceFile>,
    hashes: &[usize],
    from: usize,
    to: usize,
) -> Option<(File, Vec<Diagnostic>)> {
    let pairs = PolicyParser::parse(Rule::file, file.text.get(from..to)?).ok()?;
    let mut lower = Lower {
        file,
        diags: Vec::new(),
        hashes,
        base: from,
    };
    let mut out = File::default();
    for pair in pairs.flatten().take(1) {
        out = lower.lower_file(pair);
    }
    Some((out, lower.diags))
}

/// Parses the whole file at once.
fn parse_whole(file: &Arc<SourceFile>, hashes: &[usize]) -> Result<File, Vec<Diagnostic>> {
    let pairs = match PolicyParser::parse(Rule::file, &file.text) {
        Ok(p) => p,
        Err(e) => return Err(vec![syntax_error(file, &e)]),
    };
    let mut lower = Lower {
        file,
        diags: Vec::new(),
        hashes,
        base: 0,
    };
    let mut out = File::default();
    for pair in pairs.flatten().take(1) {
        out = lower.lower_file(pair);
    }
    if lower.diags.is_empty() {
        Ok(out)
    } else {
        Err(lower.diags)
    }
}

/// Where a file may be cut into up to `threads` pieces of at least `min` bytes, each parsed on
/// its own: at lines that begin with the keyword `tenant` or `application`.
///
/// Such a line begins a top-level block and nothing else. A line begins outside any string or
/// comment (neither spans lines), so it begins with a token; the grammar reads the keywords
/// `tenant` and `application` only where a top-level block begins (they are reserved: no name,
/// factor or level can be one). So no rule that parses the text before the cut reads the
/// keyword after it, and every rule sees the same text up to where it stops: when every piece
/// parses, the pieces' items are the whole file's, and when one does not, neither does the
/// whole file (which is then parsed as one, for its errors).
fn pieces(text: &str, threads: usize, min: usize) -> Vec<usize> {
    let want = threads.min(text.len() / min.max(1));
    if want < 2 {
        return Vec::new();
    }
    let step = text.len() / want;
    let mut starts = Vec::new();
    let mut next = step;
    for (at, _) in text.match_indices('\n') {
        let line = at + 1;
        if line < next {
            continue;
        }
        let rest = text.get(line..).unwrap_or("");
        let keyword = ["tenant", "application"].into_iter().any(|k| {
            rest.strip_prefix(k).is_some_and(|after| {
                !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        });
        if keyword {
            starts.push(line);
            if starts.len() + 1 == want {
                break;
            }
            next = line + step;
        }
    }
    starts
}

/// Whether `b` is a control character a policy file may not hold: below a space other than tab,
/// line feed and carriage return, or DEL.
fn is_control(b: u8) -> bool {
    (b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f
}

/// Whether the byte at `i` of `bytes` may not be in a policy file: a control character
/// ([`is_control`]), or a carriage return not followed by a line feed (many editors and
/// terminals show it as a line break, where the language reads none: a rule after it in a
/// comment would look written and be commented out).
fn refused_at(bytes: &[u8], i: usize) -> bool {
    let at = |k: usize| bytes.get(i + k).copied();
    match at(0) {
        Some(b'\r') => at(1) != Some(b'\n'),
        // U+0085 (next line).
        Some(0xC2) => at(1) == Some(0x85),
        // U+061C (the Arabic letter mark, a bidirectional control).
        Some(0xD8) => at(1) == Some(0x9C),
        // U+2028 and U+2029 (line and paragraph separators: line breaks to some editors, as a
        // lone carriage return is), and the rest of Unicode's bidirectional controls: U+200E and
        // U+200F (the left-to-right and right-to-left marks), U+202A–U+202E and U+2066–U+2069
        // (they reorder what an editor shows, so a review would read other text than the
        // parser does).
        Some(0xE2) => matches!(
            (at(1), at(2)),
            (Some(0x80), Some(0x8E | 0x8F | 0xA8..=0xAE)) | (Some(0x81), Some(0xA6..=0xA9))
        ),
        Some(b) => is_control(b),
        None => false,
    }
}

/// Where the first control character of `bytes` is ([`is_control`]), eight bytes at a time:
/// a word with no byte below a space and none equal to DEL is passed whole (the usual tests
/// for a byte below `n` and a byte equal to `n` in a word, which may flag a word that has none,
/// never miss one: a flagged word is looked at byte by byte).
fn control_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = u64::from_le_bytes(word);
        let below_space = x.wrapping_sub(u64::from(b' ') * ONES) & !x & HIGH;
        let d = x ^ (0x7f * ONES);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        // The lead bytes of the refused characters beyond ASCII.
        let c2 = x ^ (0xC2 * ONES);
        let d8 = x ^ (0xD8 * ONES);
        let e2 = x ^ (0xE2 * ONES);
        let lead = (c2.wrapping_sub(ONES) & !c2
            | d8.wrapping_sub(ONES) & !d8
            | e2.wrapping_sub(ONES) & !e2)
            & HIGH;
        if below_space | del | lead != 0
            && let Some(i) = (at..at + 8).find(|&i| refused_at(bytes, i))
        {
            return Some(i);
        }
        at += 8;
    }
    (at..bytes.len()).find(|&i| refused_at(bytes, i))
}

fn prescan(file: &Arc<SourceFile>) -> Result<(), Vec<Diagnostic>> {
    let text = &file.text;
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![
            Diagnostic::error(
                "E020",
                file,
                Span::new(0, 0),
                format!(
                    "this file is too large ({:.1} MB; the limit is {} MiB)",
                    text.len() as f64 / 1e6,
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            )
            .label("file starts here")
            .help("split the policies over several files in the rules directory"),
        ]);
    }
    if let Some(at) = text.find('\0') {
        return Err(vec![
            Diagnostic::error(
                "E024",
                file,
                Span::new(at, at + 1),
                "this file contains a NUL byte",
            )
            .label("NUL byte")
            .help("policy files are text; is this a binary file?"),
        ]);
    }
    // Tab, line feed and carriage return are the only control characters of a policy file
    // (the grammar's whitespace is a tab to a space: this check keeps the others out of it,
    // and out of names, strings and comments).
    if let Some(at) = control_at(text.as_bytes()) {
        let byte = text.as_bytes().get(at).copied().unwrap_or_default();
        let ch = text.get(at..).and_then(|t| t.chars().next()).unwrap_or('?');
        let width = ch.len_utf8().max(1);
        let (what, help) = if byte >= 0x80 {
            (
                format!(
                    "an invisible line break or a bidirectional control (U+{:04X})",
                    u32::from(ch)
                ),
                "an editor shows text around it otherwise than the language reads it: remove it",
            )
        } else if byte == b'\r' {
            (
                "a carriage return not followed by a line feed (a line break to some editors, not to the language)".to_string(),
                "end lines with a line feed, or a carriage return and a line feed",
            )
        } else {
            (
                format!("a control character (U+{byte:04X})"),
                "policy files are plain text: remove it (tab, line feed and carriage return are the only ones allowed)",
            )
        };
        return Err(vec![
            Diagnostic::error(
                "E040",
                file,
                Span::new(at, at + width),
                format!("this file contains {what}"),
            )
            .label("control character")
            .help(help),
        ]);
    }
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(vec![
            Diagnostic::error("E023", file, Span::new(0, 0), "this file defines nothing")
                .label("empty file")
                .help("write a rule such as `when new_device require aal2`, or delete the file"),
        ]);
    }
    // Parentheses outside strings and comments, as the language's one token stream reads them.
    let mut depth = 0usize;
    for at in token::parens(text) {
        match text.as_bytes().get(at) {
            Some(b'(') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(vec![
                        Diagnostic::error(
                            "E019",
                            file,
                            Span::new(at, at + 1),
                            "conditions are nested too deeply",
                        )
                        .label(format!("more than {MAX_NESTING} levels of parentheses"))
                        .help("split the condition into several policies; they stack"),
                    ]);
                }
            }
            Some(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The words a user understands for each grammar rule. Exhaustive on purpose: a new rule
/// cannot ship without a name.
fn describe(r: Rule) -> &'static str {
    match r {
        Rule::EOI => "end of file",
        Rule::WHITESPACE | Rule::comment => "a comment",
        Rule::file | Rule::top_item => {
            "a `tenant`, `application` or `policy` block, a declaration or a `when` rule"
        }
        Rule::tenant_block | Rule::kw_tenant => "`tenant`",
        Rule::tenant_item => "a declaration, a `policy` or a `when` rule",
        Rule::application_block | Rule::kw_application => "`application`",
        Rule::app_item => "`cache off`, a `policy`, an `override policy` or a `when` rule",
        Rule::duration_decl | Rule::kw_duration => "`duration`",
        Rule::operation_decl | Rule::kw_operation => "`operation`",
        Rule::op_class => "an operation class (`routine`, `sensitive` or `admin`)",
        Rule::resource_decl | Rule::kw_resource => "`resource`",
        Rule::attribute_decl | Rule::kw_attribute => "`attribute`",
        Rule::factor_decl | Rule::factor_clause | Rule::kw_factor => "`factor`",
        Rule::admin_decl | Rule::kw_admin => "`admin`",
        Rule::risk_block | Rule::kw_risk => "`risk`",
        Rule::risk_item => "`weight`, `max_speed` or `threat_feed`",
        Rule::weight_decl | Rule::kw_weight => "`weight`",
        Rule::max_speed_decl | Rule::kw_max_speed => "`max_speed`",
        Rule::threat_feed_decl | Rule::kw_threat_feed => "`threat_feed`",
        Rule::cache_decl | Rule::kw_cache => "`cache`",
        Rule::policy | Rule::kw_policy => "`policy`",
        Rule::kw_report_only => "`report_only`",
        Rule::override_policy | Rule::kw_override => "`override`",
        Rule::bare_rule | Rule::rule | Rule::when_clause | Rule::kw_when => "`when`",
        Rule::require_clause | Rule::kw_require => "`require`",
        Rule::factor_not => "`not`",
        Rule::factor_list | Rule::factor_name => "a factor such as `totp`",
        Rule::validity => "`for` and a duration, or `every time`",
        Rule::every_time | Rule::kw_every => "`every time`",
        Rule::expr | Rule::operand | Rule::primary => "a condition such as `risk >= 70`",
        Rule::infix => "`and` or `or`",
        Rule::prefix | Rule::kw_not => "`not`",
        Rule::paren | Rule::lparen => "`(`",
        Rule::script_pred | Rule::kw_script => "`script`",
        Rule::comparison => "a comparison such as `amount > 1000`",
        Rule::membership => "a membership test such as `operation in [a, b]`",
        Rule::call => "a signal such as `new_country(30d)`",
        Rule::call_arg => "a duration such as `30d` or a name",
        Rule::predicate | Rule::ident | Rule::name_body | Rule::ident_char => "a name",
        Rule::cmp_op => "a comparison operator (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::literal => "a value (a number, a \"string\" or a name)",
        Rule::aal_name => "an assurance level (`aal1`, `aal2` or `aal3`)",
        Rule::duration => "a duration such as `15m`",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::string | Rule::string_inner => "a \"string\"",
        Rule::kmh => "`km/h`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::pipe => "`|`",
        Rule::keyword => "a keyword",
        Rule::kw_of => "`of`",
        Rule::kw_strength => "`strength`",
        Rule::kw_default => "`default`",
        Rule::kw_off => "`off`",
        Rule::kw_routine => "`routine`",
        Rule::kw_sensitive => "`sensitive`",
        Rule::kw_any => "`any`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_in => "`in`",
        Rule::kw_for => "`for`",
        Rule::kw_time => "`time`",
    }
}

fn syntax_error(file: &Arc<SourceFile>, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&str> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().map(|r| describe(*r)).collect()
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    expected.sort_unstable();
    expected.dedup();
    let mut pos = pos;
    // Only spaces and comments left: the end of the file.
    let at_end =
        file.text.get(pos..).is_some_and(|r| r.trim().is_empty()) || code_end(&file.text) <= pos;
    if at_end {
        // At the end of the file, point just after the last thing written, not at an empty line.
        pos = code_end(&file.text);
    }
    let rest = file.text.get(pos..).unwrap_or("");
    let found: String = if at_end || rest.trim().is_empty() {
        String::new()
    } else {
        let first = rest.chars().next().unwrap_or(' ');
        if first.is_alphanumeric() || first == '_' {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        } else {
            first.to_string()
        }
    };
    let (message, span) = if found.is_empty() {
        ("unexpected end of file".to_string(), Span::new(pos, pos))
    } else {
        let shown: String = if found.chars().any(char::is_control) {
            found.escape_debug().to_string()
        } else {
            found.clone()
        };
        (
            format!("unexpected `{shown}`"),
            Span::new(pos, pos + found.len()),
        )
    };
    let expect_text = match expected.as_slice() {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    let mut d =
        Diagnostic::error("E001", file, span, message).label(format!("expected {expect_text}"));
    if found == "\""
        && file.text.get(pos..).is_some_and(|r| {
            !r.get(1..)
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .contains('"')
        })
    {
        d = d.help("this string is not closed: add `\"` before the end of the line");
    } else if expected.contains(&"a name") && token::is_reserved(&found) {
        d = d.help(format!(
            "`{found}` is a keyword and cannot be used as a name"
        ));
    } else if let Some(h) = syntax_hint(&file.text, pos, &found, &expected) {
        d = d.help(h);
    } else {
        d = d.help(fallback_hint(&expected, &expect_text, found.is_empty()));
    }
    d
}

/// The hint of a syntax error no closer hint fits (SPEC §3: every error carries one): how the
/// thing expected is written.
fn fallback_hint(expected: &[&str], expect_text: &str, at_end: bool) -> String {
    let has = |part: &str| expected.iter().any(|e| e.contains(part));
    if has("a duration such as") || has("`for` and a duration") && !has("`require`") {
        "a duration is a whole number and its unit written together: `30s`, `5m`, `1h` or `30d`"
            .to_string()
    } else if has("`tenant`") && has("`when`") {
        "a file holds `when` rules, `policy` blocks and `tenant` and `application` blocks (a tenant's declarations inside its block): is the line before unfinished, or a word misspelt?".to_string()
    } else if has("`cache`") && has("`override`") {
        "an application block holds `cache off`, `policy` and `override policy` blocks and `when` rules, and ends with `}`; declarations (`duration`, `operation`, `attribute`, `factor`, `risk`) belong in its tenant's block".to_string()
    } else if at_end && has("`require`") {
        "the rule is not finished: a rule reads `when <condition> require <level> [factor <factors>] [for <duration> | every time]`, e.g. `when new_device require aal2`".to_string()
    } else if has("`}`") && has("`policy`") && has("`when`") {
        "a block holds declarations (such as `operation payout sensitive` or `attribute amount: number`), `policy` blocks and `when` rules, and ends with `}`: is the line before unfinished, or a word misspelt?".to_string()
    } else if has("assurance level") {
        "write the level to require: `aal1`, `aal2` or `aal3`".to_string()
    } else if has("a factor") {
        "name the factors allowed: one (`webauthn`), several (`webauthn|totp`), `any`, or all but one (`not sms`)".to_string()
    } else if has("comparison operator") {
        "compare a value with `==`, `!=`, `<`, `<=`, `>` or `>=` (e.g. `risk >= 70`), or test membership with `in [..]`".to_string()
    } else if has("`require`") {
        "a rule reads `when <condition> require <level> [factor <factors>] [for <duration> | every time]`, e.g. `when risk >= 70 require aal3 factor webauthn|totp for 5m`".to_string()
    } else if has("a condition") || has("comparison") {
        "a condition is a signal (`new_device`, `new_country(30d)`), a comparison (`amount > 1000`, `risk >= 70`) or a membership test (`operation in [payout]`), joined with `and`, `or`, `not` and parentheses".to_string()
    } else {
        format!("write {expect_text} here")
    }
}

/// A hint for a syntax error (SPEC §3: errors carry a hint): a misspelt keyword among those
/// expected (`requre` → `require`), a duration written apart from its unit (`5 m`), or, at the
/// end of the file, the `{` left open.
fn syntax_hint(text: &str, pos: usize, found: &str, expected: &[&str]) -> Option<String> {
    if found.is_empty() {
        // The end of the file: the last `{` not closed, outside strings and comments.
        let mut open = Vec::new();
        for t in token::tokens(text).filter(|t| t.kind == TokenKind::Punct) {
            match text.get(t.span.start..t.span.end) {
                Some("{") => open.push(t.span.start),
                Some("}") => {
                    open.pop();
                }
                _ => {}
            }
        }
        let at = *open.last()?;
        let line = text.get(..at).unwrap_or("").matches('\n').count() + 1;
        return Some(format!(
            "the `{{` on line {line} is not closed: add `}}` after its last item"
        ));
    }
    if found.chars().all(|c| c.is_ascii_digit()) && expected.iter().any(|e| e.contains("duration"))
    {
        // `5 m`: the number, then spaces, then a unit.
        let after = text.get(pos + found.len()..).unwrap_or("");
        let unit: String = after
            .trim_start_matches([' ', '\t'])
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        if after.starts_with([' ', '\t']) && matches!(unit.as_str(), "s" | "m" | "h" | "d") {
            return Some(format!(
                "write a duration's number and unit together: `{found}{unit}`"
            ));
        }
        return None;
    }
    if !found.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return None;
    }
    // The keywords the parser expected, as the descriptions quote them.
    let keywords: Vec<&str> = expected
        .iter()
        .flat_map(|e| e.split('`').skip(1).step_by(2))
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    stepup_core::did_you_mean(found, keywords).map(|k| format!("did you mean `{k}`?"))
}

pub(crate) fn invariant(file: &Arc<SourceFile>, span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        "E000",
        file,
        span,
        format!("internal invariant violated while reading {what}"),
    )
    .label("here")
    .help("this is a bug in stepup, please report it with this file")
}

fn code_end(text: &str) -> usize {
    let mut end = text.len();
    loop {
        let trimmed = text.get(..end).unwrap_or("").trim_end();
        end = trimmed.len();
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        match comment_start(trimmed.get(line_start..).unwrap_or("")) {
            Some(c) => end = line_start + c,
            None => return end,
        }
    }
}

/// Byte offset of the `#` that starts a comment on this line, if any (strings never span lines).
fn comment_start(line: &str) -> Option<usize> {
    token::tokens(line)
        .find(|t| t.kind == TokenKind::Comment)
        .map(|t| t.span.start)
}

struct Lower<'f> {
    file: &'f Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    /// The offset of every `#` in the file, in order: only a span whose text has one can end
    /// in a comment, so only those are tokenized to trim it.
    hashes: &'f [usize],
    /// Where in the file the parsed text starts (a piece of a large file).
    base: usize,
}

/// Inner pairs that carry meaning (keywords and punctuation left out), in order; an iterator,
/// so that walking a node allocates nothing.
fn meaningful(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::lbrace
                | Rule::rbrace
                | Rule::lparen
                | Rule::rparen
                | Rule::lbracket
                | Rule::rbracket
                | Rule::comma
                | Rule::colon
                | Rule::pipe
                | Rule::kmh
                | Rule::EOI
                | Rule::kw_tenant
                | Rule::kw_application
                | Rule::kw_of
                | Rule::kw_duration
                | Rule::kw_operation
                | Rule::kw_resource
                | Rule::kw_attribute
                | Rule::kw_factor
                | Rule::kw_strength
                | Rule::kw_default
                | Rule::kw_risk
                | Rule::kw_weight
                | Rule::kw_max_speed
                | Rule::kw_threat_feed
                | Rule::kw_cache
                | Rule::kw_policy
                | Rule::kw_when
                | Rule::kw_require
                | Rule::kw_for
                | Rule::kw_every
                | Rule::kw_time
                | Rule::kw_script
                | Rule::kw_in
        )
    })
}

impl Lower<'_> {
    fn bug(&mut self, span: Span, what: &str) {
        self.diags.push(invariant(self.file, span, what));
    }

    /// The span of a pair without the whitespace and comments pest's implicit skipping may leave
    /// at its end (a sequence ending in an optional element consumes the skip before it).
    fn span_of(&self, p: &Pair<'_, Rule>) -> Span {
        let start = self.base + p.as_span().start();
        let text = p.as_str();
        let end = start + text.trim_end().len();
        // No `#` before the trimmed end: no comment to trim (the common case, in constant time).
        let first = self.hashes.partition_point(|&h| h < start);
        if self.hashes.get(first).is_none_or(|&h| h >= end) {
            return Span::new(start, end);
        }
        Span::new(start, start + code_end(text))
    }

    fn lower_file(&mut self, pair: Pair<'_, Rule>) -> File {
        let mut items = Vec::new();
        for p in meaningful(pair) {
            let span = self.span_of(&p);
            match p.as_rule() {
                Rule::tenant_block => items.extend(self.lower_tenant_block(p).map(Item::Tenant)),
                Rule::application_block => {
                    items.extend(self.lower_application_block(p).map(Item::Application))
                }
                _ => {
                    // A member that reported why it could not be read (a condition too deep,
                    // say) is not also an internal error.
                    let reported = self.diags.len();
                    match self.lower_member(p) {
                        Some(m) => items.push(Item::Member(m)),
                        None if self.diags.len() > reported => {}
                        None => self.bug(span, "a file item"),
                    }
                }
            }
        }
        File { items }
    }

    fn lower_tenant_block(&mut self, pair: Pair<'_, Rule>) -> Option<TenantBlock> {
        let span = self.span_of(&pair);
        let mut it = meaningful(pair);
        let name = self.lower_name(it.next(), span)?;
        let members = it.filter_map(|p| self.lower_member(p)).collect();
        Some(TenantBlock {
            name,
            members,
            span,
        })
    }

    fn lower_application_block(&mut self, pair: Pair<'_, Rule>) -> Option<AppBlock> {
        let span = self.span_of(&pair);
        let mut it = meaningful(pair);
        let name = self.lower_name(it.next(), span)?;
        let tenant = self.lower_name(it.next(), span)?;
        let members = it.filter_map(|p| self.lower_member(p)).collect();
        Some(AppBlock {
            name,
            tenant,
            members,
            span,
        })
    }

    fn lower_name(&mut self, pair: Option<Pair<'_, Rule>>, at: Span) -> Option<Name> {
        match pair {
            Some(p)
                if matches!(
                    p.as_rule(),
                    Rule::ident | Rule::factor_name | Rule::aal_name
                ) =>
            {
                Some(Name {
                    text: p.as_str().to_string(),
                    span: self.span_of(&p),
                })
            }
            _ => {
                self.bug(at, "a name");
                None
            }
        }
    }

    fn lower_member(&mut self, pair: Pair<'_, Rule>) -> Option<Member> {
        let span = self.span_of(&pair);
        match pair.as_rule() {
            Rule::duration_decl => self.lower_duration_decl(pair),
            Rule::operation_decl => self.lower_operation_decl(pair),
            Rule::resource_decl => {
                let mut it = meaningful(pair);
                self.lower_name(it.next(), span).map(Member::Resource)
            }
            Rule::attribute_decl => {
                let mut it = meaningful(pair);
                let name = self.lower_name(it.next(), span)?;
                let ty = self.lower_name(it.next(), span)?;
                Some(Member::Attribute { name, ty })
            }
            Rule::factor_decl => {
                let mut it = meaningful(pair);
                let factor = self.lower_name(it.next(), span)?;
                let aal = self.lower_name(it.next(), span)?;
                Some(Member::FactorStrength { factor, aal })
            }
            Rule::admin_decl => self.lower_admin_decl(pair),
            Rule::risk_block => self.lower_risk_block(pair),
            Rule::cache_decl => Some(Member::CacheOff(span)),
            Rule::policy => self.lower_policy(pair, false).map(Member::Policy),
            Rule::override_policy => {
                let inner = meaningful(pair).find(|p| p.as_rule() == Rule::policy);
                match inner {
                    Some(p) => self.lower_policy(p, true).map(Member::Policy),
                    None => {
                        self.bug(span, "an override");
                        None
                    }
                }
            }
            Rule::bare_rule => self.lower_bare_rule(pair).map(Member::Policy),
            _ => {
                self.bug(span, "a declaration");
                None
            }
        }
    }

    fn lower_duration_decl(&mut self, pair: Pair<'_, Rule>) -> Option<Member> {
        let span = self.span_of(&pair);
        match meaningful(pair).next() {
            Some(p) => Some(Member::Duration(self.lower_duration(&p))),
            None => {
                self.bug(span, "a duration");
                None
            }
        }
    }

    fn lower_operation_decl(&mut self, pair: Pair<'_, Rule>) -> Option<Member> {
        let span = self.span_of(&pair);
        let mut it = meaningful(pair);
        let name = self.lower_name(it.next(), span)?;
        let class = match it.next().map(|p| p.as_str().to_string()).as_deref() {
            Some("routine") => OperationClass::Routine,
            Some("sensitive") => OperationClass::Sensitive,
            Some("admin") => OperationClass::Admin,
            _ => {
                self.bug(span, "an operation class");
                return None;
            }
        };
        Some(Member::Operation { name, class, span })
    }

    fn lower_admin_decl(&mut self, pair: Pair<'_, Rule>) -> Option<Member> {
        let span = self.span_of(&pair);
        let mut req = None;
        for p in meaningful(pair) {
            if p.as_rule() == Rule::require_clause {
                req = Some(self.lower_require_clause(p)?);
            }
        }
        Some(Member::AdminDefault(req, span))
    }

    fn lower_risk_block(&mut self, pair: Pair<'_, Rule>) -> Option<Member> {
        let span = self.span_of(&pair);
        let mut items = Vec::new();
        for p in meaningful(pair) {
            let ps = self.span_of(&p);
            match p.as_rule() {
                Rule::weight_decl => {
                    let mut it = meaningful(p);
                    let name = self.lower_name(it.next(), ps)?;
                    let n = it.next().map(|i| self.lower_int(&i))?;
                    items.push(RiskItem::Weight(name, n));
                }
                Rule::max_speed_decl => {
                    let n = meaningful(p).next().map(|i| self.lower_int(&i))?;
                    items.push(RiskItem::MaxSpeed(n));
                }
                Rule::threat_feed_decl => {
                    let s = meaningful(p).next().map(|i| self.lower_string(&i))?;
                    items.push(RiskItem::ThreatFeed(s));
                }
                Rule::kw_risk => {}
                _ => self.bug(ps, "a risk setting"),
            }
        }
        Some(Member::Risk(items, span))
    }

    fn lower_policy(&mut self, pair: Pair<'_, Rule>, is_override: bool) -> Option<Policy> {
        let span = self.span_of(&pair);
        let (mut name, mut message, mut when, mut require) = (None, None, None, None);
        let mut report_only = false;
        for p in meaningful(pair) {
            match p.as_rule() {
                Rule::kw_report_only => report_only = true,
                Rule::ident => {
                    name = Some(Name {
                        text: p.as_str().to_string(),
                        span: self.span_of(&p),
                    })
                }
                Rule::string => message = Some(self.lower_string(&p)),
                Rule::when_clause => when = self.lower_when_clause(p),
                Rule::require_clause => require = self.lower_require_clause(p),
                _ => self.bug(self.span_of(&p), "a policy"),
            }
        }
        if name.is_none() {
            self.bug(span, "a policy name");
        }
        Some(Policy {
            name,
            is_override,
            report_only,
            message,
            when: when?,
            require: require?,
            span,
        })
    }

    fn lower_bare_rule(&mut self, pair: Pair<'_, Rule>) -> Option<Policy> {
        let span = self.span_of(&pair);
        let (mut when, mut require) = (None, None);
        for p in meaningful(pair) {
            match p.as_rule() {
                Rule::when_clause => when = self.lower_when_clause(p),
                Rule::require_clause => require = self.lower_require_clause(p),
                _ => self.bug(self.span_of(&p), "a rule"),
            }
        }
        Some(Policy {
            name: None,
            is_override: false,
            report_only: false,
            message: None,
            when: when?,
            require: require?,
            span,
        })
    }

    fn lower_when_clause(&mut self, pair: Pair<'_, Rule>) -> Option<Expr> {
        let span = self.span_of(&pair);
        match meaningful(pair).next() {
            Some(e) => match self.lower_expr(e, 0) {
                Ok(x) => Some(x),
                Err(d) => {
                    self.diags.push(d);
                    None
                }
            },
            None => {
                self.bug(span, "a condition");
                None
            }
        }
    }

    /// Lowers a condition `depth` levels deep: the parentheses and `not`s around it.
    fn lower_expr(&self, pair: Pair<'_, Rule>, depth: usize) -> Result<Expr, Diagnostic> {
        let span = self.span_of(&pair);
        if depth > MAX_CONDITION_DEPTH {
            return Err(self.too_deep(span));
        }
        // The runs of `not`, bounded; and the operands of the first chain of `and`s (up to the
        // first `or`), to make that chain at its size.
        let mut run = 0usize;
        let (mut operands, mut first_chain) = (0usize, true);
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::kw_not => {
                    run += 1;
                    if run > MAX_NOT_RUN {
                        return Err(Diagnostic::error(
                            "E019",
                            self.file,
                            self.span_of(&p),
                            "too many `not` in a row",
                        )
                        .label(format!("more than {MAX_NOT_RUN}"))
                        .help("two `not`s cancel out: remove them in pairs"));
                    }
                    continue;
                }
                Rule::kw_or => first_chain = false,
                Rule::kw_and => {}
                _ => operands += usize::from(first_chain),
            }
            run = 0;
        }
        // Operands with their `not`s, `and` binding tighter than `or`, both left-associative; an
        // operand that is itself an `and` (an `or`) joins the chain it is in, so chains are flat.
        // The leftmost operand's error is the one reported.
        let mut terms: Vec<Expr> = Vec::new();
        let mut factors: Vec<Expr> = Vec::with_capacity(operands);
        let mut nots = 0usize;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_not => nots += 1,
                Rule::kw_and => {}
                Rule::kw_or => terms.push(join(Joined::And, std::mem::take(&mut factors))),
                _ => {
                    // Every operand counts its `not`s, not only a parenthesis: the formatter
                    // may write a run of `not`s before a parenthesis that stood after one, and
                    // the depth it writes must be the depth it read.
                    if depth + nots > MAX_CONDITION_DEPTH {
                        return Err(self.too_deep(self.span_of(&p)));
                    }
                    let mut e = self.lower_primary(p, depth + nots)?;
                    for _ in 0..std::mem::take(&mut nots) {
                        e = Expr::Not(Box::new(e));
                    }
                    factors.push(e);
                }
            }
        }
        terms.push(join(Joined::And, factors));
        Ok(join(Joined::Or, terms))
    }

    /// A condition nested deeper than [`MAX_CONDITION_DEPTH`], at `span`.
    fn too_deep(&self, span: Span) -> Diagnostic {
        Diagnostic::error("E019", self.file, span, "conditions are nested too deeply")
            .label(format!(
                "more than {MAX_CONDITION_DEPTH} levels of parentheses and `not`"
            ))
            .help(
                "two `not`s cancel out: remove them in pairs, or split the condition into \
                 several policies; they stack",
            )
    }

    fn lower_primary(&self, pair: Pair<'_, Rule>, depth: usize) -> Result<Expr, Diagnostic> {
        let span = self.span_of(&pair);
        let bug = || invariant(self.file, span, "a condition");
        let name = |p: Option<&Pair<'_, Rule>>| -> Result<Name, Diagnostic> {
            p.map(|p| Name {
                text: p.as_str().to_string(),
                span: self.span_of(p),
            })
            .ok_or_else(bug)
        };
        match pair.as_rule() {
            Rule::paren => {
                let inner = meaningful(pair).next().ok_or_else(bug)?;
                self.lower_expr(inner, depth + 1)
            }
            Rule::script_pred => {
                let s = meaningful(pair).next().ok_or_else(bug)?;
                Ok(Expr::Script(self.lower_string(&s)))
            }
            Rule::predicate => {
                let mut parts = pair.into_inner();
                let lhs = name(parts.next().as_ref())?;
                let Some(tail) = parts.next() else {
                    return Ok(Expr::Flag(lhs));
                };
                match tail.as_rule() {
                    Rule::comparison => {
                        let mut parts = meaningful(tail);
                        let op = match parts.next().as_ref().map(Pair::as_str) {
                            Some("==") => CmpOp::Eq,
                            Some("!=") => CmpOp::Ne,
                            Some("<") => CmpOp::Lt,
                            Some("<=") => CmpOp::Le,
                            Some(">") => CmpOp::Gt,
                            Some(">=") => CmpOp::Ge,
                            _ => return Err(bug()),
                        };
                        let rhs = parts
                            .next()
                            .map(|p| self.lower_literal(&p))
                            .ok_or_else(bug)?;
                        Ok(Expr::Cmp(lhs, op, rhs))
                    }
                    Rule::membership => {
                        let items = meaningful(tail).map(|p| self.lower_literal(&p)).collect();
                        Ok(Expr::In(lhs, items, span))
                    }
                    Rule::call => {
                        let args = meaningful(tail)
                            .map(|p| {
                                if p.as_rule() == Rule::duration {
                                    Arg::Duration(self.lower_duration(&p))
                                } else {
                                    Arg::Name(Name {
                                        text: p.as_str().to_string(),
                                        span: self.span_of(&p),
                                    })
                                }
                            })
                            .collect();
                        Ok(Expr::Call(lhs, args, span))
                    }
                    _ => Err(bug()),
                }
            }
            _ => Err(bug()),
        }
    }

    fn lower_require_clause(&mut self, pair: Pair<'_, Rule>) -> Option<Require> {
        let span = self.span_of(&pair);
        let mut it = meaningful(pair);
        let aal = self.lower_name(it.next(), span)?;
        let mut factors = Factors::Unspecified;
        let mut validity = None;
        for p in it {
            match p.as_rule() {
                Rule::factor_clause => factors = self.lower_factor_clause(p)?,
                Rule::validity => validity = self.lower_validity(p),
                _ => self.bug(self.span_of(&p), "a requirement"),
            }
        }
        Some(Require {
            aal,
            factors,
            validity,
            span,
        })
    }

    fn lower_factor_clause(&mut self, pair: Pair<'_, Rule>) -> Option<Factors> {
        let span = self.span_of(&pair);
        let inner = meaningful(pair).next();
        match inner {
            Some(p) if p.as_rule() == Rule::kw_any => Some(Factors::Any(self.span_of(&p))),
            Some(p) if p.as_rule() == Rule::factor_not => {
                let f = meaningful(p).find(|q| q.as_rule() == Rule::factor_name);
                self.lower_name(f, span).map(Factors::Not)
            }
            Some(p) if p.as_rule() == Rule::factor_list => Some(Factors::List(
                meaningful(p)
                    .map(|q| Name {
                        text: q.as_str().to_string(),
                        span: self.span_of(&q),
                    })
                    .collect(),
            )),
            _ => {
                self.bug(span, "a factor constraint");
                None
            }
        }
    }

    fn lower_validity(&mut self, pair: Pair<'_, Rule>) -> Option<ValidityAst> {
        let span = self.span_of(&pair);
        match meaningful(pair).next() {
            Some(p) if p.as_rule() == Rule::duration => {
                Some(ValidityAst::For(self.lower_duration(&p)))
            }
            Some(p) if p.as_rule() == Rule::every_time => {
                Some(ValidityAst::EveryTime(self.span_of(&p)))
            }
            _ => {
                self.bug(span, "a validity");
                None
            }
        }
    }

    fn lower_duration(&self, p: &Pair<'_, Rule>) -> Dur {
        let s = p.as_str();
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let mult: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            _ => 86_400,
        };
        Dur {
            secs: num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)),
            span: self.span_of(p),
        }
    }

    fn lower_int(&self, p: &Pair<'_, Rule>) -> Int {
        Int {
            value: p.as_str().parse().ok(),
            span: self.span_of(p),
        }
    }

    fn lower_string(&self, p: &Pair<'_, Rule>) -> Str {
        // A string is compound-atomic (`"` string_inner `"`, nothing skipped between): its inner
        // text is its own without the quotes, no need to walk into it.
        let text = p.as_str();
        let raw = if p.as_rule() == Rule::string {
            text.get(1..text.len().saturating_sub(1)).unwrap_or("")
        } else {
            p.clone().into_inner().next().map_or("", |i| i.as_str())
        };
        let span = self.span_of(p);
        if !raw.contains('\\') {
            return Str {
                value: raw.to_string(),
                span,
            };
        }
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => {}
                }
            } else {
                value.push(c);
            }
        }
        Str { value, span }
    }

    fn lower_literal(&self, p: &Pair<'_, Rule>) -> Lit {
        match p.as_rule() {
            Rule::number => Lit::Number(p.as_str().parse().unwrap_or(f64::NAN), self.span_of(p)),
            Rule::string => Lit::Str(self.lower_string(p)),
            _ => Lit::Name(Name {
                text: p.as_str().to_string(),
                span: self.span_of(p),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        reason = "tests: a failed assertion is the report"
    )]

    use super::*;

    /// Every syntax error carries a hint (SPEC §3; a review found `for 5x`, a `require` at the
    /// end of the file and `new_country(1.5d)` without one): the rules' file cut after every
    /// token, and with every token replaced by a word that fits nowhere, or by a number.
    #[test]
    fn every_syntax_error_carries_a_hint() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/acme.policy"),
        )
        .unwrap();
        let ends: Vec<(usize, usize)> = token::tokens(&text)
            .filter(|t| t.kind != TokenKind::Comment)
            .map(|t| (t.span.start, t.span.end))
            .collect();
        let mut broken: Vec<String> = Vec::new();
        for &(start, end) in &ends {
            broken.push(text.get(..end).unwrap().to_string());
            for word in ["zzz", "7", "}"] {
                let mut t = text.clone();
                t.replace_range(start..end, word);
                broken.push(t);
            }
        }
        let mut errors = 0;
        for t in broken {
            let file = Arc::new(SourceFile {
                name: "x.policy".into(),
                text: t.clone(),
            });
            let Err(diags) = parse(&file) else { continue };
            for d in diags.iter().filter(|d| d.code == "E001") {
                errors += 1;
                assert!(
                    d.help.as_deref().is_some_and(|h| !h.is_empty()),
                    "no hint for {}: {}\n{t}",
                    d.message,
                    d.label
                );
            }
        }
        assert!(errors > 500, "{errors}");
    }

    /// The word-at-a-time search finds the first control character exactly where a search
    /// byte by byte does, at every place in a text and for every byte value.
    #[test]
    fn a_control_character_is_found_where_it_is() {
        let slow = |b: &[u8]| (0..b.len()).find(|&i| refused_at(b, i));
        let base: Vec<u8> = b"when amount > 100\r\n\trequire aal2 # \xc3\xa9 ~\n".to_vec();
        assert_eq!(control_at(&base), None);
        for byte in 0..=255u8 {
            for at in 0..base.len() {
                let mut text = base.clone();
                if let Some(b) = text.get_mut(at) {
                    *b = byte;
                }
                assert_eq!(control_at(&text), slow(&text), "{byte:#x} at {at}");
                text.push(byte);
                assert_eq!(
                    control_at(&text),
                    slow(&text),
                    "{byte:#x} at {at} and the end"
                );
            }
        }
        assert_eq!(control_at(b""), None);
        // The refused characters beyond ASCII, and their neighbours that are not refused (a dash,
        // an apostrophe, a no-break space), at every place.
        let refused: [&[u8]; 8] = [
            "\u{85}".as_bytes(),
            "\u{61c}".as_bytes(),
            "\u{200e}".as_bytes(),
            "\u{200f}".as_bytes(),
            "\u{2028}".as_bytes(),
            "\u{2029}".as_bytes(),
            "\u{202e}".as_bytes(),
            "\u{2067}".as_bytes(),
        ];
        // (U+061B and U+061D are Arabic punctuation; U+200D, a zero-width joiner, joins emoji.)
        let kept: [&[u8]; 7] = [
            "—".as_bytes(),
            "’".as_bytes(),
            "\u{a0}".as_bytes(),
            "\u{2070}".as_bytes(),
            "\u{61b}".as_bytes(),
            "\u{61d}".as_bytes(),
            "\u{200d}".as_bytes(),
        ];
        for (seq, is_refused) in refused
            .iter()
            .map(|s| (s, true))
            .chain(kept.iter().map(|s| (s, false)))
        {
            // (Not between a carriage return and its line feed: the return would be alone.)
            for at in (0..=base.len()).filter(|&at| at == 0 || base.get(at - 1) != Some(&b'\r')) {
                let mut text = base.clone();
                text.splice(at..at, seq.iter().copied());
                let found = control_at(&text);
                assert_eq!(found, slow(&text), "{seq:?} at {at}");
                assert_eq!(found == Some(at), is_refused, "{seq:?} at {at}");
            }
        }
    }

    /// The condition of a one-rule file, as a compact string: `&[..]`, `|[..]`, `!x`, names.
    fn shape(cond: &str) -> String {
        fn show(e: &Expr) -> String {
            let list = |v: &[Expr]| v.iter().map(show).collect::<Vec<_>>().join(",");
            match e {
                Expr::And(v) => format!("&[{}]", list(v)),
                Expr::Or(v) => format!("|[{}]", list(v)),
                Expr::Not(a) => format!("!{}", show(a)),
                Expr::Flag(n) => n.text.clone(),
                other => format!("{other:?}"),
            }
        }
        let file = Arc::new(SourceFile {
            name: "x.policy".into(),
            text: format!("when {cond} require aal2"),
        });
        let ast = parse(&file).unwrap();
        match ast.items.first() {
            Some(Item::Member(Member::Policy(p))) => show(&p.when),
            other => panic!("{other:?}"),
        }
    }

    /// `not` binds tightest, then `and`, then `or`; chains are flat, and a parenthesized chain
    /// of the same operator joins the chain around it (what pest's Pratt parser built).
    #[test]
    fn operators_nest_and_chains_are_flat() {
        for (cond, want) in [
            ("a", "a"),
            ("(a)", "a"),
            ("not a", "!a"),
            ("not not a", "!!a"),
            ("a and b and c", "&[a,b,c]"),
            ("a or b or c", "|[a,b,c]"),
            ("a or b and c or d", "|[a,&[b,c],d]"),
            ("not a and b", "&[!a,b]"),
            ("not (a and b)", "!&[a,b]"),
            ("(a and b) and c", "&[a,b,c]"),
            ("a and (b and c)", "&[a,b,c]"),
            ("(a or b) or c", "|[a,b,c]"),
            ("a or (b or c)", "|[a,b,c]"),
            ("(a or b) and c", "&[|[a,b],c]"),
            ("(a and b) or c", "|[&[a,b],c]"),
            ("((a or b)) or (c and d)", "|[a,b,&[c,d]]"),
            ("(a and b)", "&[a,b]"),
            ("not (a) or not not (b or c) and d", "|[!a,&[!!|[b,c],d]]"),
        ] {
            assert_eq!(shape(cond), want, "{cond}");
        }
    }
}

/// A file parsed in pieces is the file parsed whole: on texts made of the test corpus, the
/// project's rules and generated blocks, cut at every line that begins a block (and at a few),
/// as they are and with a random edit (a brace, a quote, a `#` or a `tenant` line inserted, a
/// run of text deleted) that may make them invalid anywhere.
#[cfg(test)]
mod pieces_tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "tests: a failed assertion is the report"
    )]

    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["tests/valid", "tests/invalid", "../../rules"] {
            let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "policy"))
                .collect();
            paths.sort();
            for p in paths {
                if let Ok(t) = String::from_utf8(std::fs::read(p).unwrap()) {
                    texts.push(t);
                }
            }
        }
        for i in 0..4 {
            texts.push(format!(
                "tenant g{i} {{\n  operation pay sensitive\n  attribute amount: number\n  policy p{i} \"Confirm.\" {{ when operation == pay and amount > {i}0 # }} \"\n require aal2 for 5m }}\n}}\napplication a{i} of g{i} {{\n  when amount > 5 require aal3\n}}\n"
            ));
        }
        texts
    }

    /// What a parse gives, comparable with its spans (which take no part in a tree's
    /// equality): the tree as printed, or the diagnostics as `stepup check` renders them.
    fn outcome(r: Result<File, Vec<Diagnostic>>) -> Result<String, String> {
        r.map(|f| format!("{f:?}"))
            .map_err(|ds| crate::diag::render_all(&ds, false))
    }

    fn edit() -> impl Strategy<Value = (usize, Option<&'static str>, usize)> {
        (
            any::<usize>(),
            prop::sample::select(vec![
                None,
                Some("}"),
                Some("{"),
                Some("\""),
                Some("#"),
                Some("\ntenant"),
                Some("\ntenant x {\n"),
                Some("\napplication"),
                Some("}\ntenant y {\n  when new_device require aal2\n"),
                Some("\\"),
            ]),
            0usize..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn a_file_parsed_in_pieces_is_the_file_parsed_whole(
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
            edits in prop::collection::vec(edit(), 0..3),
            threads in 2usize..6,
        ) {
            let corpus = corpus();
            let mut text: String = picks.iter().map(|i| i.get(&corpus).as_str()).collect::<Vec<_>>().join("\n");
            for (at, insert, delete) in edits {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match insert {
                    Some(s) => text.insert_str(at, s),
                    None => {
                        let mut end = (at + delete).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(at..end, "");
                    }
                }
            }
            let file = Arc::new(SourceFile { name: "x.policy".into(), text: text.clone() });
            let whole = match prescan(&file) {
                Err(d) => Err(d),
                Ok(()) => {
                    let hashes: Vec<usize> = text.match_indices('#').map(|(i, _)| i).collect();
                    parse_whole(&file, &hashes)
                }
            };
            let whole_text = whole.as_ref().ok().map(crate::fmt::format_canonical);
            let whole = outcome(whole);
            for starts in [pieces(&text, usize::MAX, 1), pieces(&text, threads, 1)] {
                for on in [1, 2] {
                    let cut = parse_in(&file, &starts, on, true);
                    // The canonical text made piece by piece is the whole tree's.
                    let cut_text = cut.as_ref().ok().map(|(tree, text)| {
                        text.clone().unwrap_or_else(|| crate::fmt::format_canonical(tree))
                    });
                    prop_assert_eq!(&cut_text, &whole_text, "cut at {:?}", starts);
                    prop_assert_eq!(&outcome(cut.map(|(tree, _)| tree)), &whole, "cut at {:?}", starts);
                    prop_assert_eq!(&outcome(parse_in(&file, &starts, on, false).map(|(tree, _)| tree)), &whole);
                }
            }
        }
    }

    #[test]
    fn a_file_is_cut_only_where_a_block_begins_and_only_when_large() {
        let block = |i: usize| format!("tenant t{i} {{\n  when new_device require aal2\n}}\n");
        let text: String = (0..8).map(block).collect();
        let starts = pieces(&text, 4, 1);
        assert_eq!(starts.len(), 3, "four pieces");
        for s in &starts {
            assert!(text[*s..].starts_with("tenant t"), "{s}");
        }
        assert!(pieces(&text, 4, text.len()).is_empty(), "too small to cut");
        assert!(pieces(&text, 1, 1).is_empty(), "one thread");
        let tenants_word = "tenants_x {\n}\n".repeat(8);
        assert!(
            pieces(&tenants_word, 4, 1).is_empty(),
            "`tenants_x` is not the keyword"
        );
    }
}
