//! Every diagnostic code in one place: the errors (`E0xx`, one meaning each), the lints
//! (`S0xx`, in [`crate::lints`]) and the notes (`N0xx`), each with what it means, why it
//! matters and an example (shown by `stepup explain CODE`).
//!
//! A code is never reused for another meaning: a new kind of error gets the next free number
//! (the highest today is [`LAST_ERROR`]). E025 and E026 were never assigned; E009 and E010
//! became the lints S012 and S013 (SPEC §9 names them lints: the rules load, and an unreachable
//! requirement is refused as a `conflict` when it fires).

use crate::lints::LINTS;
pub use crate::lints::LintDoc as CodeDoc;

/// The highest error code assigned; the next error gets the one after it.
pub const LAST_ERROR: &str = "E042";

/// Every error: the file (or the set) does not load.
pub const ERRORS: &[CodeDoc] = &[
    CodeDoc {
        code: "E000",
        name: "internal-invariant",
        what: "stepup met a shape of the parsed text its grammar does not allow",
        why: "this is a bug in stepup, not in the policy; please report it with the file",
        example: "(no policy file should produce it)",
    },
    CodeDoc {
        code: "E001",
        name: "syntax-error",
        what: "the text does not follow the grammar: a word, bracket, string or value is missing or unexpected, or a block holds something it cannot (a declaration in an application, an `override` in a tenant)",
        why: "a file that cannot be read loads none of its policies; the label says what was expected there",
        example: "when new_device require",
    },
    CodeDoc {
        code: "E002",
        name: "unknown-factor",
        what: "a factor name is not one stepup knows (`password`, `email_otp`, `sms`, `voice`, `push`, `totp`, `webauthn`)",
        why: "a requirement naming an unknown factor could never be met as written",
        example: "when new_device require aal2 factor totpp",
    },
    CodeDoc {
        code: "E003",
        name: "unknown-operation",
        what: "a condition names an operation the tenant's catalog does not declare (when it declares any)",
        why: "a misspelt operation never matches, so the policy would silently never fire",
        example: "operation payout sensitive\nwhen operation == payuot require aal3",
    },
    CodeDoc {
        code: "E004",
        name: "unknown-resource-class",
        what: "a condition names a resource class the tenant does not declare (when it declares any)",
        why: "a misspelt resource class never matches, so the policy would silently never fire",
        example: "resource payments\nwhen first_access(paymnets) require aal2",
    },
    CodeDoc {
        code: "E005",
        name: "unknown-attribute",
        what: "a comparison reads a request attribute the tenant does not declare",
        why: "attributes are typed by their declaration; an undeclared one cannot be compared safely",
        example: "when amount > 1000 require aal3",
    },
    CodeDoc {
        code: "E006",
        name: "unknown-signal",
        what: "a name used as a signal (alone, called, or in a risk weight) is not a signal or a boolean attribute",
        why: "an unknown signal has no value; the policy could never be evaluated as written",
        example: "when new_devise require aal2",
    },
    CodeDoc {
        code: "E007",
        name: "type-mismatch",
        what: "a comparison's value has the wrong type: a name or string where a number is expected, a number where a name or string is expected, or anything but `true`/`false` for a bool attribute",
        why: "a comparison between different types is never true, so the policy would silently never fire",
        example: "when risk >= high require aal2",
    },
    CodeDoc {
        code: "E008",
        name: "duplicate-policy",
        what: "two policies of one tenant, or of one application, have the same name",
        why: "a name identifies a policy in audit records and overrides; two would be ambiguous",
        example: "policy p \"Confirm it is you.\" { when new_device require aal2 }\npolicy p \"Confirm it is you.\" { when threat_intel require aal3 }",
    },
    CodeDoc {
        code: "E011",
        name: "unknown-tenant",
        what: "an application block belongs to a tenant no file defines",
        why: "an application inherits its tenant's catalogs and policies; without the tenant it has neither",
        example: "application web of acme { cache off }",
    },
    CodeDoc {
        code: "E012",
        name: "zero-duration",
        what: "an elevation or a signal window lasts zero",
        why: "an elevation of zero never satisfies anything, and a window of zero days never matches",
        example: "when new_device require aal2 for 0m",
    },
    CodeDoc {
        code: "E013",
        name: "duration-too-long",
        what: "an elevation lasts longer than 90 days, or a signal window longer than 10 years",
        why: "such a duration is almost certainly a mistake (a unit typed wrong) and would keep an elevation or a signal alive for good",
        example: "when new_device require aal2 for 365d",
    },
    CodeDoc {
        code: "E014",
        name: "script-error",
        what: "a `script` predicate does not compile in the sandbox: a syntax error, an unknown variable, or a read of `ctx` as a whole",
        why: "scripts compile once when the rules load, so a broken one is reported here rather than failing every decision",
        example: "when script \"ctx.risk >\" require aal2",
    },
    CodeDoc {
        code: "E015",
        name: "unknown-aal",
        what: "an assurance level is not `aal1`, `aal2` or `aal3`",
        why: "the requirement's level decides which factors satisfy it; an unknown one decides nothing",
        example: "when new_device require aal4",
    },
    CodeDoc {
        code: "E016",
        name: "duplicate-application",
        what: "two application blocks have the same name and tenant",
        why: "one application's policies would silently shadow the other's",
        example: "tenant t { }\napplication web of t { cache off }\napplication web of t { cache off }",
    },
    CodeDoc {
        code: "E017",
        name: "duplicate-declaration",
        what: "a tenant declares the same operation, resource, attribute, factor strength, risk setting, duration or admin default twice",
        why: "two declarations of one name could disagree; only one can be in force",
        example: "operation payout sensitive\noperation payout routine\nwhen new_device require aal2",
    },
    CodeDoc {
        code: "E018",
        name: "number-too-large",
        what: "a number compared with an attribute or with `risk` is too large to represent",
        why: "the comparison could not be evaluated exactly",
        example: "attribute amount: number\nwhen amount > 1e999 require aal3  # written out as 400 digits",
    },
    CodeDoc {
        code: "E019",
        name: "nesting-too-deep",
        what: "a condition nests more than 64 levels of parentheses, more than 128 levels of parentheses and `not`s together, or runs more than 16 `not`s in a row",
        why: "policy files are untrusted input; the limits keep parsing and evaluation bounded",
        example: "when ((((...65 levels...)))) require aal2",
    },
    CodeDoc {
        code: "E020",
        name: "file-too-large",
        what: "a policy file is larger than 8 MiB",
        why: "policy files are untrusted input; 10,000 policies take about 4 MB",
        example: "(a file of more than 8 MiB)",
    },
    CodeDoc {
        code: "E021",
        name: "invalid-utf8",
        what: "a policy file is not valid UTF-8 text",
        why: "names and messages are text; a file in another encoding would be read wrongly",
        example: "(a file saved as Latin-1 with an accented message)",
    },
    CodeDoc {
        code: "E022",
        name: "risk-setting-out-of-range",
        what: "a risk weight is not between 0 and 100, or `max_speed` is not between 1 and 100000 km/h",
        why: "the score is capped at 100 and speeds beyond a jet's are meaningless; such a value is a typo",
        example: "risk { weight new_device 150 }\nwhen risk >= 70 require aal2",
    },
    CodeDoc {
        code: "E023",
        name: "empty-file",
        what: "a policy file defines nothing (it is empty or only comments)",
        why: "an empty file in the rules directory is most likely a mistake: truncated, or not saved",
        example: "# nothing here yet",
    },
    CodeDoc {
        code: "E024",
        name: "nul-byte",
        what: "a policy file contains a NUL byte",
        why: "policy files are text; a NUL byte means a binary or corrupted file",
        example: "when new_device\0 require aal2",
    },
    CodeDoc {
        code: "E027",
        name: "empty-list",
        what: "an `in [...]` test lists no value",
        why: "an empty list never matches, so the policy would silently never fire",
        example: "when operation in [] require aal2",
    },
    CodeDoc {
        code: "E028",
        name: "signal-arguments",
        what: "a signal is used with the wrong arguments: `new_country` needs one window in days, `first_access` a resource class and an optional window, the others none",
        why: "a signal's arguments decide what it measures; a missing or extra one cannot be guessed",
        example: "when new_country require aal2",
    },
    CodeDoc {
        code: "E029",
        name: "script-undeclared-attribute",
        what: "a script reads `ctx.NAME` where `NAME` is not a declared attribute",
        why: "a script's reads are checked like a comparison's: an undeclared attribute has no type",
        example: "when script \"ctx.amount > 10000\" require aal3",
    },
    CodeDoc {
        code: "E030",
        name: "reserved-admin-default",
        what: "a policy is named `admin_default` without `override` in an application",
        why: "`admin_default` is the built-in policy for `admin` operations; it is configured with `admin default ...`, or replaced with `override policy admin_default` in an application",
        example: "policy admin_default \"Confirm this administrative action.\" { when new_device require aal2 }",
    },
    CodeDoc {
        code: "E031",
        name: "unreadable-threat-feed",
        what: "a `threat_feed` file cannot be read (missing, or permission denied)",
        why: "without its blocklist `threat_intel` could never fire; loading fails rather than silently allowing",
        example: "risk { threat_feed \"feeds/missing.netset\" }\nwhen threat_intel require aal3",
    },
    CodeDoc {
        code: "E032",
        name: "threat-feed-without-entries",
        what: "every line of a `threat_feed` file is malformed: it lists no IP address or CIDR range",
        why: "an empty blocklist blocks nothing; such a file is most likely the wrong file",
        example: "risk { threat_feed \"feeds/notes.txt\" }  # a file of prose",
    },
    CodeDoc {
        code: "E033",
        name: "unordered-comparison",
        what: "`operation`, `resource` or a string attribute is compared with `<`, `<=`, `>` or `>=`",
        why: "names and strings have no order that means anything to a policy; only `==`, `!=` and `in [...]` apply",
        example: "when operation > payout require aal2",
    },
    CodeDoc {
        code: "E034",
        name: "non-boolean-condition",
        what: "a number or string attribute is used alone as a condition",
        why: "only signals and bool attributes are true or false by themselves; a number or string needs a comparison",
        example: "attribute amount: number\nwhen amount require aal3",
    },
    CodeDoc {
        code: "E035",
        name: "compared-signal",
        what: "a signal is compared like a value (`new_device == true`)",
        why: "signals are conditions by themselves; write `when new_device` or `when not new_device`",
        example: "when new_device == true require aal2",
    },
    CodeDoc {
        code: "E036",
        name: "unknown-attribute-type",
        what: "an attribute is declared with a type other than `number`, `string` or `bool`",
        why: "an attribute's type decides which comparisons apply to it and how the request's value is read",
        example: "attribute amount: integer\nwhen new_device require aal2",
    },
    CodeDoc {
        code: "E037",
        name: "window-not-whole-days",
        what: "a signal window is not a whole number of days",
        why: "sign-in history is kept per day; a window of hours would be rounded silently",
        example: "when new_country(36h) require aal2",
    },
    CodeDoc {
        code: "E038",
        name: "builtin-attribute-name",
        what: "an attribute is declared with the name of something built in (a signal, `operation`, `resource`, `risk`, or a field scripts read from `ctx`)",
        why: "the declaration would shadow the built-in name, and conditions reading it would be ambiguous",
        example: "attribute new_device: bool\nwhen new_device require aal2",
    },
    CodeDoc {
        code: "E039",
        name: "empty-threat-feed-path",
        what: "a `threat_feed` names no file (`threat_feed \"\"`)",
        why: "a feed without a path blocks nothing; `threat_intel` could never fire",
        example: "risk { threat_feed \"\" }\nwhen threat_intel require aal3",
    },
    CodeDoc {
        code: "E040",
        name: "control-character",
        what: "a policy file contains a control character other than tab, line feed and carriage return (a vertical tab, a form feed, an escape...), a carriage return not followed by a line feed, an invisible line break (U+0085, U+2028, U+2029) or a bidirectional control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)",
        why: "it is invisible in an editor and in a review, and in a message it would reach users' terminals and pages; a lone carriage return looks like a line break in many editors, where the language reads none (a rule after it in a comment would look written and be commented out)",
        example: "when new_device\u{b} require aal2",
    },
    CodeDoc {
        code: "E041",
        name: "threat-feed-outside-rules",
        what: "a `threat_feed` path leaves the policy file's directory: an absolute path, a `..`, or a symbolic link that leads out of it",
        why: "a policy author must not make the loader read the host's files (its environment, a service's keys, another tenant's rules) into a policy set or a diagnostic; a shared feed is copied into the rules",
        example: "risk { threat_feed \"/proc/self/environ\" }\nwhen threat_intel require aal3",
    },
    CodeDoc {
        code: "E042",
        name: "too-many-scope-policies",
        what: "the set's scopes hold more than 1,000,000 policies in all: each tenant's, and for each application that changes them (its own policies or `cache off`) the tenant's again with its own",
        why: "every such application is compiled apart, with its tenant's policies: a few hundred kilobytes of applications over a large tenant took a minute and gigabytes to load",
        example: "(a tenant of 1,000 policies and 1,000 applications that each add one)",
    },
];

/// Every note: information about the other diagnostics.
pub const NOTES: &[CodeDoc] = &[CodeDoc {
    code: "N001",
    name: "diagnostics-truncated",
    what: "a file has more than 100 diagnostics; the first 100 are shown (errors first) and this note counts the rest by code",
    why: "a mangled or generated file can hold thousands of one mistake; fixing the first ones usually fixes the pattern, and the totals still count every one",
    example: "(a file with more than 100 errors or warnings)",
}];

/// Every documented code: errors, lints, notes.
pub fn all() -> impl Iterator<Item = &'static CodeDoc> {
    ERRORS.iter().chain(LINTS).chain(NOTES)
}

/// Codes no longer emitted, and the code that took their meaning.
pub const RETIRED: &[(&str, &str)] = &[("E009", "S012"), ("E010", "S013")];

/// The code that took a retired code's meaning (any case).
#[must_use]
pub fn successor(code: &str) -> Option<&'static str> {
    RETIRED
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(code))
        .map(|(_, new)| *new)
}

/// Looks a code up by code (any case) or name.
#[must_use]
pub fn find(code_or_name: &str) -> Option<&'static CodeDoc> {
    all().find(|d| d.code.eq_ignore_ascii_case(code_or_name) || d.name == code_or_name)
}
