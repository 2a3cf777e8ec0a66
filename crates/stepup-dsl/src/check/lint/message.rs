//! S002 `missing-message` and S003 `vague-message`: a policy's message for users is missing,
//! empty or vague.

use super::super::Ctx;
use crate::ast;

/// Phrases that say nothing about why a prompt appears.
const VAGUE: [&str; 4] = [
    "security reasons",
    "security purposes",
    "for your security",
    "for security",
];

/// Words that ask for a proof without saying what it is for: a message made of these alone
/// ("Please verify your identity.", "Additional verification required.") is as vague as "for
/// security reasons" (an outside check found S003 read only that phrase).
const GENERIC: &[&str] = &[
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
    "for",
    "identity",
    "is",
    "it",
    "it's",
    "let",
    "let's",
    "lets",
    "me",
    "must",
    "need",
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
    "step",
    "step-up",
    "stepup",
    "that",
    "the",
    "this",
    "to",
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

/// Whether a message (lower case) has words, and says nothing with them but that a proof is
/// asked for.
fn only_generic(lower: &str) -> bool {
    let mut words = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '-'))
        .map(|w| {
            w.trim_matches(|c| c == '\'' || c == '’' || c == '-')
                .replace('’', "'")
        })
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some() && words.all(|w| GENERIC.contains(&w.as_str()))
}

/// Checks the message of policy `name` (a bare rule has none and needs none).
pub(in crate::check) fn message(cx: &mut Ctx<'_>, p: &ast::Policy, name: &str) {
    let name_span = p.name.as_ref().map_or(p.span, |n| n.span);
    match &p.message {
        None if p.name.is_some() => cx.warn("S002", name_span, format!("policy `{name}` has no message for users"), "no message", Some("say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into())),
        Some(m) => {
            let lower = m.value.to_lowercase();
            if lower.trim().is_empty() {
                cx.warn("S002", m.span, format!("policy `{name}` has an empty message"), "empty", None);
            } else if let Some(phrase) = VAGUE.iter().find(|v| lower.contains(*v)) {
                let help = if only_generic(&lower) {
                    "say specifically why the prompt appears, e.g. \"You're signing in from a new device — let's verify.\"".to_string()
                } else {
                    format!("the rest of the message says why: drop \"{phrase}\", which users learn to click through")
                };
                cx.warn("S003", m.span, "this message is too vague", "vague", Some(help));
            } else if only_generic(&lower) {
                cx.warn("S003", m.span, "this message is too vague", "vague", Some("it asks for a proof without saying what for: say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into()));
            }
        }
        None => {}
    }
}
