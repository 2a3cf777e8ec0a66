//! The friction a policy set costs: prompts per user per day, by policy, step-up completion
//! rate, refusals.

use std::collections::BTreeMap;

use serde::Serialize;
use stepup_engine::DecisionKind;

use crate::run::FileReport;

/// Friction statistics over replayed files.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Events replayed.
    pub events: usize,
    /// Step-up prompts.
    pub prompts: usize,
    /// Distinct (user, day) pairs with any event.
    pub user_days: usize,
    /// Prompts per user per day.
    pub prompts_per_user_day: f64,
    /// Prompts caused by each policy.
    pub by_policy: BTreeMap<String, usize>,
    /// Completed step-ups.
    pub completed: usize,
    /// Failed step-ups.
    pub failed: usize,
    /// Completed / prompts.
    pub completion_rate: f64,
    /// Denied actions.
    pub refusals: usize,
    /// Report-only policies: the prompts (and refusals) each would have caused (SPEC §12).
    pub report_only: BTreeMap<String, usize>,
}

/// Computes the statistics.
#[must_use]
pub fn compute(reports: &[FileReport]) -> Stats {
    let mut s = Stats::default();
    let mut days = std::collections::BTreeSet::new();
    for r in reports {
        for e in &r.events {
            s.events += 1;
            days.insert((r.file.clone(), e.user.clone(), e.at.0.div_euclid(86_400)));
            for r in &e.decision.report_only {
                if matches!(
                    r.would_be,
                    stepup_engine::WouldBe::StepUp | stepup_engine::WouldBe::Deny
                ) {
                    *s.report_only.entry(r.policy.clone()).or_default() += 1;
                }
            }
            match e.decision.kind {
                DecisionKind::StepUp => {
                    s.prompts += 1;
                    for p in e
                        .decision
                        .fired
                        .iter()
                        .filter(|p| !e.decision.satisfied.contains(p))
                    {
                        *s.by_policy.entry(p.clone()).or_default() += 1;
                    }
                }
                DecisionKind::Completed => s.completed += 1,
                DecisionKind::Failed => s.failed += 1,
                DecisionKind::Deny => s.refusals += 1,
                DecisionKind::Allow => {}
            }
        }
    }
    s.user_days = days.len();
    s.prompts_per_user_day = if s.user_days == 0 {
        0.0
    } else {
        s.prompts as f64 / s.user_days as f64
    };
    s.completion_rate = if s.prompts == 0 {
        0.0
    } else {
        s.completed as f64 / s.prompts as f64
    };
    s
}

/// The statistics as text.
#[must_use]
pub fn render(s: &Stats) -> String {
    let mut out = format!(
        "friction: {} prompts over {} events, {:.2} prompts per user per day ({} user-days)\n  step-ups completed {}/{} ({:.0}%), failed {}, refusals {}\n",
        s.prompts,
        s.events,
        s.prompts_per_user_day,
        s.user_days,
        s.completed,
        s.prompts,
        s.completion_rate * 100.0,
        s.failed,
        s.refusals
    );
    for (p, n) in &s.by_policy {
        out.push_str(&format!(
            "  {p}: {n} prompt{}\n",
            if *n == 1 { "" } else { "s" }
        ));
    }
    for (p, n) in &s.report_only {
        out.push_str(&format!(
            "  {p} (report-only): would have prompted or refused {n} time{}\n",
            if *n == 1 { "" } else { "s" }
        ));
    }
    out
}
