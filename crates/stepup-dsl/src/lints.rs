//! The catalog of lints: each with a code, a name, and what it does, why it matters and an
//! example (shown by `stepup explain CODE`). The errors and notes are in [`crate::codes`].

/// Documentation of one diagnostic code: a lint, an error (as [`crate::codes::CodeDoc`]) or a
/// note.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LintDoc {
    /// Stable code.
    pub code: &'static str,
    /// Short kebab-case name.
    pub name: &'static str,
    /// What it flags (for an error: what it means).
    pub what: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// A policy that triggers it (in parentheses: a description, where no text can).
    pub example: &'static str,
}

/// Every lint.
pub const LINTS: &[LintDoc] = &[
    LintDoc {
        code: "S001",
        name: "routine-step-up",
        what: "a policy steps up on an operation the catalog declares `routine`",
        why: "over-stepping trains users to dismiss prompts reflexively, which weakens the prompt when it really matters; routine reads and preference changes should never prompt",
        example: "operation view_profile routine\npolicy p \"...\" { when operation == view_profile require aal2 }",
    },
    LintDoc {
        code: "S002",
        name: "missing-message",
        what: "a policy has no user-facing message",
        why: "users tolerate a prompt that says why it appears; a generic prompt reads as friction",
        example: "policy payouts { when operation == payout require aal3 }",
    },
    LintDoc {
        code: "S003",
        name: "vague-message",
        what: "a policy's message is vague: \"for security reasons\", or words that only ask for a proof (\"Please verify your identity.\")",
        why: "specific framing of why the prompt appears makes users tolerate it and trust the platform more",
        example: "policy p \"Please verify for security reasons.\" { when new_device require aal2 }",
    },
    LintDoc {
        code: "S004",
        name: "long-aal3-elevation",
        what: "an AAL3 elevation stays valid longer than 15 minutes (a policy's, or the tenant's `admin default`)",
        why: "a stolen access token keeps its effectiveness for the whole window; 5 minutes is the recommended AAL3 duration",
        example: "policy p \"...\" { when operation == payout require aal3 for 1h }",
    },
    LintDoc {
        code: "S005",
        name: "weaker-override",
        what: "an application override may be weaker than the tenant policy it replaces (lower AAL, more factors — one it did not allow, no stronger than the weakest it did —, a longer duration, another condition, or `report_only` in place of an enforced policy)",
        why: "per-application overrides exist to tighten a tenant's defaults; a weaker one silently lowers protection for that application",
        example: "tenant t { policy p \"...\" { when new_device require aal3 factor webauthn for 5m } }\napplication a of t { policy p \"...\" { when new_device require aal2 } }",
    },
    LintDoc {
        code: "S006",
        name: "risk-threshold-out-of-range",
        what: "a risk comparison can never be true or is always true (the score is 0 to 100)",
        why: "a threshold such as `risk > 100` silently disables a risk trigger",
        example: "when risk >= 150 require aal2",
    },
    LintDoc {
        code: "S007",
        name: "disjoint-factors",
        what: "two enforced policies (the built-in `admin_default` among them) can fire on the same event but no factor satisfies both, or three or more can, each two sharing a factor but all of them none (report-only policies are never merged); at most 1,000 pairs are listed per scope",
        why: "when both fire, the most-restrictive merge intersects their factor sets; an empty intersection refuses the action outright",
        example: "policy a \"...\" { when new_device require aal2 factor sms }\npolicy b \"...\" { when new_device require aal3 factor webauthn }",
    },
    LintDoc {
        code: "S008",
        name: "unguarded-attribute",
        what: "a policy reads a request attribute (in a comparison or a script's `ctx`) without an `operation` test guarding it",
        why: "only operations carry attributes; on every sign-in and access the attribute is absent, an absent attribute is unknown, and an unknown condition fires (fail closed), so the policy prompts on every event; guard it with `operation == ... and ...`",
        example: "attribute amount: number\npolicy big \"...\" { when amount > 1000 require aal3 }",
    },
    LintDoc {
        code: "S009",
        name: "malformed-feed-line",
        what: "a line of a threat feed is neither an IP address nor a CIDR range, or is the IPv4-mapped block alone (`::ffff:0:0/96`, which matches no address: mapped addresses are looked up as IPv4); it is skipped",
        why: "a skipped line is an address the blocklist does not block; a typo in a feed silently lets a known-bad range through",
        example: "risk { threat_feed \"feeds/blocklist.netset\" }  # a line reads `300.1.1.1/8`",
    },
    LintDoc {
        code: "S010",
        name: "mistyped-script",
        what: "a script compares a value with a value of another type (a flag or a string with a number, a number with a string), found by running it on typed probe values",
        why: "values of two types do not compare: the script is unknown where it compares them, and an unknown condition fires (fail closed), so the policy prompts whatever the request says; rhai alone would have answered `false` and the policy would never fire",
        example: "policy p \"...\" { when operation == payout and script \"ctx.signals.new_device > 0\" require aal2 }",
    },
    LintDoc {
        code: "S011",
        name: "skipped-file",
        what: "a file under a rules directory is not read because its extension is not `.policy` but nearly is (`payouts.polcy`, `payouts.policies`, `payouts.policy~`); the file itself is not checked",
        why: "a policy file skipped for a typo in its name guards nothing, and nothing else says so: the set loads without it",
        example: "rules/payouts.polcy  # beside rules/tenant.policy",
    },
    LintDoc {
        code: "S012",
        name: "unreachable-requirement",
        what: "no factor the requirement allows is strong enough for its assurance level (was the error E009)",
        why: "the prompt could never be satisfied: when the policy fires, every user is refused (`deny`, reason `conflict`)",
        example: "when new_device require aal3 factor sms",
    },
    LintDoc {
        code: "S013",
        name: "override-of-nothing",
        what: "an application's `override policy` names a policy its tenant does not have (or the built-in `admin_default` where the tenant has none), or a `policy` of an application, which replaces the tenant's of its name, is named nearly as one of the tenant's and replaces nothing; it is added as a new policy of the application (was the error E010)",
        why: "an override replaces a tenant policy by name; with nothing to replace it is most likely a typo, and the policy it meant to replace still applies beside it",
        example: "tenant t { operation payout sensitive }\napplication a of t { override policy pay \"Confirm this payout.\" { when operation == payout require aal3 } }",
    },
    LintDoc {
        code: "S014",
        name: "raised-factor-strength",
        what: "`factor X strength aalN` raises a factor above the assurance the default table gives it (password aal1; email_otp, sms, voice, push aal2; totp, webauthn aal3)",
        why: "a raised factor satisfies every policy of that level on its own: `factor password strength aal3` lets a password sign-in pass every `require aal3` prompt, silently",
        example: "factor password strength aal3",
    },
    LintDoc {
        code: "S015",
        name: "names-read-alike",
        what: "in a tenant without an operation catalog (or resource declarations), the policies name one operation (resource class) two ways that read alike once case, separators, `I`/`l`/`1` and `O`/`0` are set aside (`DeleteAccount`, `delete_account`)",
        why: "a request carries one spelling: it never fires the policies that spell the name the other way, so one of them guards nothing the service sends (a prompt meant for `DeleteAccount` is never asked of `delete_account`)",
        example: "tenant t {\n  policy a { when operation == delete_account require aal2 }\n  policy b { when operation == DeleteAccount and risk >= 50 require aal3 }\n}",
    },
];

/// Looks a lint up by code or name.
#[must_use]
pub fn find(code_or_name: &str) -> Option<&'static LintDoc> {
    LINTS
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(code_or_name) || l.name == code_or_name)
}
