//! Report-only policies (SPEC §12): fired with the others, judged each on its own as if it alone
//! were enforced, reported in the decision and its audit, never enforced.

use stepup_core::{FactorSet, Requirement};

use super::audit;
use super::merge::satisfied;
use crate::compile::CompiledScope;
use crate::decision::{Decision, DenyReason, ReportOnly, WouldBe, audit_names};
use crate::facts::Facts;
use crate::request::Request;
use crate::state::State;

/// What every report-only policy of the scope would have done, with an
/// `auth.step_up_report_only` record for each would-be prompt or refusal. `fired`: those that
/// fired; `notes`: why some fired although unknown. `facts`: `None` when the event was not
/// evaluated against policies (every result is `not_fired`). Without `audited`, no record.
#[expect(
    clippy::too_many_arguments,
    reason = "the walk's findings and the request, passed down the pipeline"
)]
pub(crate) fn report(
    d: &mut Decision,
    scope: &CompiledScope,
    req: &Request,
    state: &State,
    facts: Option<&Facts<'_>>,
    fired: &[usize],
    notes: &[(usize, String)],
    audited: bool,
) {
    let t = &scope.tenant;
    for &i in &scope.report_only {
        let i = i as usize;
        let (Some(p), Some(reads)) = (scope.policies.get(i), scope.reads.get(i)) else {
            continue;
        };
        let mut r = ReportOnly {
            policy: p.name.clone(),
            would_be: WouldBe::NotFired,
            required: None,
            eligible: FactorSet::EMPTY,
            deny: None,
            note: notes.iter().find(|(j, _)| *j == i).map(|(_, n)| n.clone()),
        };
        if !fired.contains(&i) {
            d.report_only.push(r);
            continue;
        }
        if satisfied(p, reads, t, req, &state.session).0 {
            r.would_be = WouldBe::Satisfied;
            d.report_only.push(r);
            continue;
        }
        let aal = p.requirement.aal;
        let factors = p.requirement.factors.intersect(t.strengths.reaching(aal));
        let eligible = factors.intersect(req.enrolled);
        r.required = Some(Requirement {
            factors,
            ..p.requirement
        });
        if factors.is_empty() || eligible.is_empty() {
            r.would_be = WouldBe::Deny;
            r.deny = Some(if factors.is_empty() {
                DenyReason::Conflict
            } else {
                DenyReason::StrongerFactorRequired
            });
        } else {
            r.would_be = WouldBe::StepUp;
            r.eligible = eligible;
        }
        if audited {
            // The record's message: what the user would have been told (a verdict has none).
            let message = if r.would_be == WouldBe::Deny {
                super::deny_message(
                    factors.is_empty(),
                    std::slice::from_ref(&p.name),
                    aal,
                    factors,
                )
            } else {
                p.message_or_default().to_string()
            };
            let mut rec = audit::record(audit_names::REPORT_ONLY, req, d.policy_set);
            rec.policies = vec![p.name.clone()].into();
            rec.required_aal = Some(aal);
            rec.risk = facts.map(|f| f.signals.breakdown());
            rec.message = Some(message.into());
            rec.errors.extend(r.note.clone());
            rec.would_be = Some(r.would_be);
            d.audit.push(rec);
        }
        d.report_only.push(r);
    }
}
