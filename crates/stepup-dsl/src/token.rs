//! The language's words and one token stream over its text: keywords, names, numbers,
//! strings, comments and punctuation.
//!
//! The pest grammar (`grammar/policy.pest`) decides what a file means; this stream is for
//! everything that only needs to know where strings and comments are — the parser's pre-scan
//! of nesting depth, the formatter's comments, the parser's trimming of trailing comments and
//! the studio's syntax colouring — so they cannot disagree. The keyword lists here and the
//! grammar's are checked against each other by a test.

use crate::diag::Span;

/// Every keyword of the grammar (its `kw_*` rules), in grammar order.
pub const KEYWORDS: &[&str] = &[
    "tenant",
    "application",
    "of",
    "duration",
    "operation",
    "resource",
    "attribute",
    "factor",
    "strength",
    "admin",
    "default",
    "off",
    "routine",
    "sensitive",
    "risk",
    "weight",
    "max_speed",
    "threat_feed",
    "cache",
    "policy",
    "override",
    "report_only",
    "when",
    "require",
    "any",
    "not",
    "and",
    "or",
    "in",
    "for",
    "every",
    "time",
    "script",
];

/// The keywords that cannot be names (the grammar's `keyword` rule); the others may name an
/// operation, an attribute or a resource.
pub const RESERVED: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "when",
    "require",
    "for",
    "every",
    "policy",
    "tenant",
    "application",
    "override",
    "script",
];

/// Whether a word is a keyword.
#[must_use]
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Whether a word is a keyword that cannot be a name.
#[must_use]
pub fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A run of letters, digits and `_` starting with a letter or `_`: a keyword or a name.
    Word,
    /// A run of letters, digits and `_` starting with a digit: a number, a duration (`15m`).
    Number,
    /// A string from its `"` to its closing `"`, or to the end of its line when it is not closed.
    /// A `\` escapes the character after it.
    String,
    /// A comment, from `#` to the end of its line (the line break left out).
    Comment,
    /// Spaces, tabs and line breaks.
    Space,
    /// Any other character: brackets, operators, commas.
    Punct,
}

/// One token: its kind and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is (spans compare equal whatever they are: compare `start`/`end`).
    pub span: Span,
}

impl Token {
    /// The token's text in `text`, the text it was read from.
    #[must_use]
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.span.start..self.span.end).unwrap_or("")
    }
}

/// The tokens of a text, in order, covering every byte; linear in the text.
#[must_use]
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, at: 0 }
}

/// The iterator [`tokens`] returns.
#[derive(Debug, Clone)]
pub struct Tokens<'t> {
    text: &'t str,
    at: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let rest = self.text.get(self.at..)?;
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        // The length of the token, in bytes of `rest`.
        let end_where = |chars: &mut std::str::CharIndices<'_>, stop: &dyn Fn(char) -> bool| {
            chars.find(|(_, c)| stop(*c)).map_or(rest.len(), |(i, _)| i)
        };
        let (kind, len) = match first {
            '#' => (TokenKind::Comment, end_where(&mut chars, &|c| c == '\n')),
            '"' => {
                let mut len = rest.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            len = i + 1;
                            break;
                        }
                        '\n' => {
                            len = i;
                            break;
                        }
                        _ => {}
                    }
                }
                (TokenKind::String, len)
            }
            c if is_word_char(c) => {
                let kind = if c.is_ascii_digit() {
                    TokenKind::Number
                } else {
                    TokenKind::Word
                };
                (kind, end_where(&mut chars, &|c| !is_word_char(c)))
            }
            c if c.is_whitespace() => (
                TokenKind::Space,
                end_where(&mut chars, &|c| !c.is_whitespace()),
            ),
            c => (TokenKind::Punct, c.len_utf8()),
        };
        let start = self.at;
        self.at += len;
        Some(Token {
            kind,
            span: Span::new(start, self.at),
        })
    }
}

/// The offsets of the `(` and `)` that [`tokens`] reads as punctuation (outside strings and
/// comments), in order: the same answer as filtering the token stream, from a scan of the
/// bytes that only stops at `(`, `)`, `"` and `#` (the parser's nesting pre-scan reads every
/// file this way).
#[must_use]
pub fn parens(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    // Every byte that can start or end what `tokens` reads differently is ASCII, and no
    // multi-byte character contains an ASCII byte, so the scan works on bytes, and skips to the
    // next of the four eight bytes at a time.
    loop {
        at = next_of_four(bytes, at);
        let Some(&b) = bytes.get(at) else { break };
        match b {
            b'(' | b')' => {
                out.push(at);
                at += 1;
            }
            b'#' => {
                // A comment runs to the end of its line.
                at = bytes
                    .iter()
                    .skip(at)
                    .position(|&c| c == b'\n')
                    .map_or(bytes.len(), |i| at + i);
            }
            b'"' => {
                // A string: a `\` escapes the character after it (a line break too); it ends at
                // its closing `"` or before an unescaped line break.
                at += 1;
                while let Some(&c) = bytes.get(at) {
                    match c {
                        b'\\' => at += 2,
                        b'"' => {
                            at += 1;
                            break;
                        }
                        b'\n' => break,
                        _ => at += 1,
                    }
                }
            }
            _ => at += 1,
        }
    }
    out
}

/// The first offset from `at` whose byte is `(`, `)`, `"` or `#` (`bytes.len()` when none is):
/// eight bytes at a time, each tested for the four at once (a byte equal to `c` is a zero byte
/// of the word xor `c` in every byte; the lowest flagged byte is the first zero, since a borrow
/// only flags bytes above it).
fn next_of_four(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let any_of = |w: u64| {
        zero_bytes(w ^ (ONES * u64::from(b'(')))
            | zero_bytes(w ^ (ONES * u64::from(b')')))
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'#')))
    };
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let hits = any_of(u64::from_le_bytes(*word));
        if hits != 0 {
            // A flag is a byte's top bit: its byte is the bit's index over eight.
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(b) = bytes.get(at) {
        if matches!(b, b'(' | b')' | b'"' | b'#') {
            return at;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "tests: a failed assertion is the report"
    )]

    use std::collections::BTreeSet;

    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        tokens(text).map(|t| (t.kind, t.text(text))).collect()
    }

    #[test]
    fn strings_comments_words_and_punctuation() {
        use TokenKind::{Comment, Number, Punct, Space, String, Word};
        assert_eq!(
            kinds("when risk>=70 # high\npolicy p \"a \\\"#\\\" b\" {(x)}"),
            vec![
                (Word, "when"),
                (Space, " "),
                (Word, "risk"),
                (Punct, ">"),
                (Punct, "="),
                (Number, "70"),
                (Space, " "),
                (Comment, "# high"),
                (Space, "\n"),
                (Word, "policy"),
                (Space, " "),
                (Word, "p"),
                (Space, " "),
                (String, "\"a \\\"#\\\" b\""),
                (Space, " "),
                (Punct, "{"),
                (Punct, "("),
                (Word, "x"),
                (Punct, ")"),
                (Punct, "}"),
            ]
        );
    }

    #[test]
    fn an_unclosed_string_ends_at_its_line_and_the_tokens_cover_the_text() {
        let text = "policy p \"open # not a comment\n# a comment\n\"x\\\ny\" é";
        let toks: Vec<Token> = tokens(text).collect();
        assert_eq!(
            toks.iter()
                .map(|t| t.text(text))
                .collect::<std::string::String>(),
            text
        );
        let strings: Vec<&str> = toks
            .iter()
            .filter(|t| t.kind == TokenKind::String)
            .map(|t| t.text(text))
            .collect();
        // An escaped line break does not end a string.
        assert_eq!(strings, vec!["\"open # not a comment", "\"x\\\ny\""]);
        let comments: Vec<&str> = toks
            .iter()
            .filter(|t| t.kind == TokenKind::Comment)
            .map(|t| t.text(text))
            .collect();
        assert_eq!(comments, vec!["# a comment"]);
    }

    #[test]
    fn parens_are_the_punctuation_of_the_token_stream() {
        let pieces = [
            "(", ")", "\"", "#", "\\", "\n", " ", "a", "1", "é", "\u{2028}", "\r", "x(", ")y",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut text = std::string::String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut r = seed;
            for _ in 0..(r % 64) {
                r = r.rotate_left(5).wrapping_mul(0x2545_f491_4f6c_dd1d);
                text.push_str(pieces[usize::try_from(r >> 59).unwrap() % pieces.len()]);
            }
            let expected: Vec<usize> = tokens(&text)
                .filter(|t| t.kind == TokenKind::Punct && matches!(t.text(&text), "(" | ")"))
                .map(|t| t.span.start)
                .collect();
            assert_eq!(parens(&text), expected, "{text:?}");
        }
    }

    /// The words in `"..."` of a grammar fragment.
    fn quoted(s: &str) -> Vec<&str> {
        s.split('"').skip(1).step_by(2).collect()
    }

    #[test]
    fn the_keyword_lists_agree_with_the_grammar() {
        let grammar = include_str!("../../../grammar/policy.pest");
        // `kw_tenant = @{ "tenant" ~ !ident_char }`: the rule's name is its word.
        let mut kw = Vec::new();
        for line in grammar.lines() {
            if let Some(rest) = line.strip_prefix("kw_") {
                let (name, body) = rest.split_once('=').unwrap();
                let words = quoted(body);
                assert_eq!(words, vec![name.trim()], "{line}");
                kw.push(name.trim());
            }
        }
        assert_eq!(
            kw, KEYWORDS,
            "KEYWORDS and the grammar's kw_* rules, in order"
        );
        // `keyword = _{ "and" | "or" | ... }`, over several lines up to its closing brace.
        let start = grammar.find("\nkeyword = _{").unwrap();
        let block = &grammar[start..];
        let block = &block[..block.find('}').unwrap()];
        let reserved: BTreeSet<&str> = quoted(block).into_iter().collect();
        assert_eq!(reserved, RESERVED.iter().copied().collect::<BTreeSet<_>>());
        assert!(RESERVED.iter().all(|w| is_keyword(w)));
    }
}
