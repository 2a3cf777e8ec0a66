//! S002 `missing-message` and S003 `vague-message`: a policy's message for users is missing,
//! empty or vague.

use super::super::Ctx;
use crate::ast;

/// Phrases that say nothing about why a prompt appears, as words. The last word of a phrase
/// that ends in `security` must end a clause (`for security.`, `for your security, ...`): `for
/// your security key` and `for security settings` say what the proof is for.
const VAGUE: [&[&str]; 6] = [
    &["for", "security", "reasons"],
    &["for", "security", "purposes"],
    &["security", "reasons"],
    &["security", "purposes"],
    &["for", "your", "security"],
    &["for", "security"],
];

/// Words that ask for a proof without saying what it is for: a message made of these alone
/// ("Please verify your identity.", "Additional verification required.") is as vague as "for
/// security reasons" (an outside check found S003 read only that phrase).
const GENERIC: &[&str] = &[
    "2fa",
    "a",
    "account",
    "additional",
    "again",
    "an",
    "and",
    "are",
    "authenticate",
    "authentication",
    "be",
    "check",
    "confirm",
    "confirmation",
    "continue",
    "due",
    "extra",
    "factor",
    "for",
    "identity",
    "in",
    "is",
    "it",
    "it's",
    "keep",
    "let",
    "let's",
    "lets",
    "me",
    "mfa",
    "multi-factor",
    "must",
    "need",
    "needed",
    "needs",
    "now",
    "of",
    "our",
    "please",
    "policy",
    "proceed",
    "protect",
    "protection",
    "purpose",
    "purposes",
    "re",
    "re-verify",
    "really",
    "reason",
    "reasons",
    "require",
    "required",
    "requires",
    "s",
    "safe",
    "safety",
    "secure",
    "security",
    "sign",
    "step",
    "step-up",
    "stepup",
    "that",
    "the",
    "this",
    "to",
    "two",
    "two-factor",
    "up",
    "us",
    "verification",
    "verify",
    "we",
    "who",
    "you",
    "you're",
    "your",
    "yourself",
];

/// A message's words (slices of `lower`, the message in lower case), each with whether a
/// clause ends after it (punctuation other than an apostrophe or a hyphen, or the end).
fn words(lower: &str) -> Vec<(&str, bool)> {
    let mut out: Vec<(&str, bool)> = Vec::with_capacity(lower.len() / 4 + 1);
    let mut start = 0;
    let ends = lower
        .char_indices()
        .chain(std::iter::once((lower.len(), '.')));
    for (at, ch) in ends {
        if ch.is_alphanumeric() || ch == '\'' || ch == '-' {
            continue;
        }
        let w = lower
            .get(start..at)
            .unwrap_or_default()
            .trim_matches(|c| c == '\'' || c == '-');
        start = at + ch.len_utf8();
        if !w.is_empty() {
            out.push((w, false));
        }
        if !ch.is_whitespace()
            && let Some(last) = out.last_mut()
        {
            last.1 = true;
        }
    }
    out
}

/// `message` in lower case, its typographic apostrophes plain (`you’re` reads as `you're`).
fn lowered(message: &str) -> String {
    let lower = message.to_lowercase();
    if lower.contains('’') {
        lower.replace('’', "'")
    } else {
        lower
    }
}

/// The vague phrase a message uses, as written in the list, if any.
fn vague_phrase(words: &[(&str, bool)]) -> Option<String> {
    VAGUE.iter().find_map(|phrase| {
        words
            .windows(phrase.len())
            .any(|w| {
                w.iter().zip(phrase.iter()).all(|((a, _), b)| a == b)
                    && (phrase.last() != Some(&"security") || w.last().is_some_and(|(_, end)| *end))
            })
            .then(|| phrase.join(" "))
    })
}

/// Whether a message has words, and says nothing with them but that a proof is asked for.
fn only_generic(words: &[(&str, bool)]) -> bool {
    !words.is_empty() && words.iter().all(|(w, _)| GENERIC.contains(w))
}

/// Checks the message of policy `name` (a bare rule has none and needs none).
pub(in crate::check) fn message(cx: &mut Ctx<'_>, p: &ast::Policy, name: &str) {
    let name_span = p.name.as_ref().map_or(p.span, |n| n.span);
    match &p.message {
        None if p.name.is_some() => cx.warn("S002", name_span, format!("policy `{name}` has no message for users"), "no message", Some("say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into())),
        Some(m) => {
            let lower = lowered(&m.value);
            let words = words(&lower);
            if m.value.trim().is_empty() {
                cx.warn("S002", m.span, format!("policy `{name}` has an empty message"), "empty", None);
            } else if let Some(phrase) = vague_phrase(&words) {
                cx.warn("S003", m.span, "this message is too vague", "vague", Some(format!("\"{phrase}\" says nothing users can check: say specifically why the prompt appears, e.g. \"You're signing in from a new device — let's verify.\"")));
            } else if only_generic(&words) {
                cx.warn("S003", m.span, "this message is too vague", "vague", Some("it asks for a proof without saying what for: say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into()));
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{lowered, words};

    /// Words are slices of the lowered text, trimmed of apostrophes and hyphens at their ends,
    /// each marked where a clause ends after it, whatever a character's length in bytes.
    #[test]
    fn words_are_cut_where_clauses_and_words_end() {
        let lower = lowered("For your SECURITY, confirm -it’s- you… Ünïcode is fine");
        assert_eq!(
            words(&lower),
            [
                ("for", false),
                ("your", false),
                ("security", true),
                ("confirm", false),
                ("it's", false),
                ("you", true),
                ("ünïcode", false),
                ("is", false),
                ("fine", true),
            ]
        );
        assert!(words("").is_empty());
        assert_eq!(words("-- ' ."), []);
    }
}
