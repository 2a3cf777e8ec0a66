//! Syntax tree → checked model: names resolved against the tenant's catalogs, types checked,
//! scripts compiled, and every error and lint of every file collected in one pass.
//!
//! One module per pass, chained in [`check`]: `declarations` (every tenant's catalogs, in every
//! file), `policies` (tenant policies and their requirements), `expressions` (conditions,
//! used by both policy passes) and `applications` (overrides and application policies). The
//! lints (S-codes) are each in their own module under `lint/`; their documentation is
//! [`crate::lints`].

mod applications;
mod declarations;
mod expressions;
mod lint;
mod policies;

use std::path::PathBuf;
use std::sync::Arc;

use stepup_core::did_you_mean;

use crate::ast;
use crate::diag::{Diagnostic, LineIndex, SourceFile, Span};
use crate::model::PolicySet;

/// Longest validity accepted for an elevation (90 days).
pub const MAX_VALIDITY_SECS: u64 = 90 * 86_400;
/// Longest window accepted for a signal (10 years).
pub const MAX_WINDOW_DAYS: u64 = 3_650;
/// Longest recommended AAL3 elevation (15 minutes).
pub const AAL3_RECOMMENDED_SECS: u64 = 15 * 60;
const BUILTINS: [&str; 3] = ["operation", "resource", "risk"];

/// One parsed file, ready to check.
pub struct Parsed {
    /// The source.
    pub file: Arc<SourceFile>,
    /// Its syntax tree.
    pub ast: ast::File,
    /// The directory relative paths in it (threat feeds) are resolved against.
    pub base_dir: PathBuf,
}

struct Ctx<'a> {
    file: &'a Arc<SourceFile>,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.diags.push(
            Diagnostic::error(code, self.file, span, msg)
                .label(label)
                .maybe_help(help),
        );
    }
    fn warn(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        self.diags.push(
            Diagnostic::warning(code, self.file, span, msg)
                .label(label)
                .maybe_help(help),
        );
    }
}

fn mean(word: &str, candidates: &[&str]) -> Option<String> {
    did_you_mean(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

struct PolicyAt<'a> {
    file: &'a Arc<SourceFile>,
    lines: &'a LineIndex,
    policy: &'a ast::Policy,
    name: String,
}

struct AppAt<'a> {
    file: &'a Arc<SourceFile>,
    lines: &'a LineIndex,
    block: &'a ast::AppBlock,
}

/// Checks parsed files and builds the policy set. Errors make the set `None`.
#[must_use]
pub fn check(files: &[Parsed], hash: String) -> (Option<PolicySet>, Vec<Diagnostic>) {
    check_on(files, hash, stepup_core::threads::PARALLEL_FROM_POLICIES)
}

/// [`check`], the tenants' policies checked on several threads from `parallel_from` policies.
fn check_on(
    files: &[Parsed],
    hash: String,
    parallel_from: usize,
) -> (Option<PolicySet>, Vec<Diagnostic>) {
    #[cfg(test)]
    for p in files {
        crate::fault("check", &p.file.name);
    }
    let mut diags = Vec::new();
    let indexes: Vec<LineIndex> = files.iter().map(|p| LineIndex::new(&p.file.text)).collect();
    // Pass 1: declarations of every tenant, in every file.
    let mut declared = declarations::pass(files, &indexes, &mut diags);
    // Pass 2: tenant policies.
    let located = policies::pass(
        &mut declared.tenants,
        &declared.policies,
        &mut diags,
        parallel_from,
    );
    // Pass 3: applications.
    let applications = applications::pass(&declared.tenants, &declared.apps, &located, &mut diags);
    let tenants = declared.tenants;
    lint::names_read_alike(files, &tenants, &mut diags);

    diags.sort_by(|a, b| {
        (a.file.name.as_str(), a.span.start).cmp(&(b.file.name.as_str(), b.span.start))
    });
    let ok = !diags.iter().any(Diagnostic::is_error);
    (
        ok.then_some(PolicySet {
            tenants,
            applications,
            hash,
        }),
        diags,
    )
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed assertion is the report"
)]
mod tests {
    use super::*;

    /// Tenants checked on threads give the set and the diagnostics (errors and lints, in
    /// order, located) that checking them one after the other gives.
    #[test]
    fn tenants_checked_on_threads_are_checked_as_in_order() {
        let mut text = String::new();
        for t in 0..4 {
            text.push_str(&format!(
                "tenant t{t} {{\n  operation pay sensitive\n  operation view routine\n  attribute amount: number\n"
            ));
            for i in 0..30 {
                let when = match (t + i) % 7 {
                    0 => "operation == pay and amountt > 5".to_string(),
                    1 => "operation == view".to_string(),
                    2 => format!("operation == pay and amount > {i}"),
                    3 => "risk >= 50".to_string(),
                    _ => format!("operation == pay and amount > {i}0"),
                };
                let name = if i == 7 { 3 } else { i };
                text.push_str(&format!(
                    "  policy p{name} {{ when {when} require aal2 for 5m }}\n"
                ));
            }
            text.push_str("}\n");
        }
        let file = Arc::new(crate::diag::SourceFile {
            name: "t.policy".into(),
            text,
        });
        let ast = crate::syntax::parse(&file).unwrap();
        let parsed = [Parsed {
            file,
            ast,
            base_dir: std::path::PathBuf::new(),
        }];
        // The set as printed, and the diagnostics as `stepup check` renders them (located).
        let show = |(set, diags): (Option<PolicySet>, Vec<Diagnostic>)| {
            (format!("{set:?}"), crate::diag::render_all(&diags, false))
        };
        let threads = show(check_on(&parsed, String::new(), 0));
        let in_order = show(check_on(&parsed, String::new(), usize::MAX));
        for code in ["E005", "E008"] {
            assert!(in_order.1.contains(code), "{code}: {}", in_order.1);
        }
        assert_eq!(threads, in_order);
    }
}
