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

/// Checks the message of policy `name` (a bare rule has none and needs none).
pub(in crate::check) fn message(cx: &mut Ctx<'_>, p: &ast::Policy, name: &str) {
    let name_span = p.name.as_ref().map_or(p.span, |n| n.span);
    match &p.message {
        None if p.name.is_some() => cx.warn("S002", name_span, format!("policy `{name}` has no message for users"), "no message", Some("say why the prompt appears, e.g. \"Confirm your identity before changing your email.\"".into())),
        Some(m) => {
            let lower = m.value.to_lowercase();
            if lower.trim().is_empty() {
                cx.warn("S002", m.span, format!("policy `{name}` has an empty message"), "empty", None);
            } else if VAGUE.iter().any(|v| lower.contains(v)) {
                cx.warn("S003", m.span, "this message is too vague", "vague", Some("say specifically why the prompt appears, e.g. \"You're signing in from a new device — let's verify.\"".into()));
            }
        }
        None => {}
    }
}
