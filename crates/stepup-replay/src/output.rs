//! Output: the readable table (coloured on a terminal), one JSON object per event, explanations
//! and expectation diffs.

use std::fmt::Write as _;

use serde_json::json;
use stepup_engine::DecisionKind;

use crate::run::{EventResult, FileReport};

/// How much of the audit records the JSON output carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditDetail {
    /// Their names only (`audit`).
    #[default]
    Names,
    /// Their names, and the records themselves (`audit_records`).
    Full,
}

/// One event as the JSON object of SPEC §7, with the audit records' names.
#[must_use]
pub fn event_json(r: &FileReport, e: &EventResult) -> serde_json::Value {
    event_json_with(r, e, AuditDetail::Names)
}

/// One event as the JSON object of SPEC §7; with [`AuditDetail::Full`], also `audit_records`:
/// the complete audit records, in order, beside their names in `audit`.
#[must_use]
pub fn event_json_with(r: &FileReport, e: &EventResult, audit: AuditDetail) -> serde_json::Value {
    let d = &e.decision;
    let risk = d.risk.as_ref().map(|k| {
        json!({
            "score": k.score,
            "range": [k.range.min, k.range.max],
            "platform": k.platform,
            "signals": k.signals.iter().map(|s| json!({"signal": s.signal, "value": s.value, "weight": s.weight})).collect::<Vec<_>>(),
        })
    });
    let mut v = json!({
        "scenario": r.name,
        "file": r.file,
        "index": e.index,
        "at": e.at.to_rfc3339(),
        "user": e.user,
        "application": e.application,
        "event": e.event,
        "decision": d.kind.as_str(),
        "deny_reason": d.deny,
        "required_aal": d.required.map(|q| q.aal),
        "allowed_factors": d.required.map(|q| q.factors.names()).unwrap_or_default(),
        "eligible_factors": d.eligible.names(),
        "max_age_s": d.required.map(|q| q.validity.max_age_secs()),
        "policies": d.fired,
        "satisfied": d.satisfied,
        "session_aal": d.session_aal,
        "risk": risk,
        "audit": d.audit.iter().map(|a| a.name).collect::<Vec<_>>(),
        "message": d.message,
        "challenge_id": d.challenge_id,
        "errors": d.errors,
        "report_only": report_only_json(d),
        "mismatches": e.mismatches.iter().map(|m| json!({"field": m.field, "expected": m.expected, "actual": m.actual})).collect::<Vec<_>>(),
    });
    if audit == AuditDetail::Full
        && let Some(o) = v.as_object_mut()
    {
        o.insert("audit_records".into(), json!(d.audit));
    }
    v
}

/// What each report-only policy would have done, as `report_only` in the JSON of an event and of
/// a decision log: `policy`, `would_be` (`not_fired|satisfied|step_up|deny`), `required_aal`,
/// `allowed_factors`, `eligible_factors`, `max_age_s`, `deny_reason`, `note`.
#[must_use]
pub fn report_only_json(d: &stepup_engine::Decision) -> serde_json::Value {
    d.report_only
        .iter()
        .map(|r| {
            json!({
                "policy": r.policy,
                "would_be": r.would_be,
                "required_aal": r.required.map(|q| q.aal),
                "allowed_factors": r.required.map(|q| q.factors.names()).unwrap_or_default(),
                "eligible_factors": r.eligible.names(),
                "max_age_s": r.required.map(|q| q.validity.max_age_secs()),
                "deny_reason": r.deny,
                "note": r.note,
            })
        })
        .collect()
}

/// A report-only result in words: `would step up to aal2`, `would deny
/// (stronger_factor_required)`, `satisfied`, `not fired`.
#[must_use]
pub fn would_text(r: &stepup_engine::ReportOnly) -> String {
    use stepup_engine::WouldBe;
    match r.would_be {
        WouldBe::NotFired => "not fired".to_string(),
        WouldBe::Satisfied => "fired, already satisfied".to_string(),
        WouldBe::StepUp => format!(
            "would step up to {}",
            r.required.map_or("?".to_string(), |q| format!(
                "{} factor {} {}",
                q.aal, q.factors, q.validity
            ))
        ),
        WouldBe::Deny => format!(
            "would deny ({})",
            r.deny
                .map_or("?", stepup_engine::decision::DenyReason::as_str)
        ),
    }
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn decision_color(k: DecisionKind) -> &'static str {
    match k {
        DecisionKind::Allow | DecisionKind::Completed => "32",
        DecisionKind::StepUp => "33",
        DecisionKind::Deny | DecisionKind::Failed => "31",
    }
}

/// The table of one file.
#[must_use]
pub fn table(r: &FileReport, color: bool, explain: bool, expect: bool) -> String {
    let mut out = String::new();
    let scope = if r.scope.1.is_empty() {
        r.scope.0.clone()
    } else {
        format!("{}/{}", r.scope.0, r.scope.1)
    };
    let _ = writeln!(out, "{} — {} ({scope})", paint(color, "1", &r.name), r.file);
    let rows: Vec<[String; 8]> = r
        .events
        .iter()
        .map(|e| {
            let d = &e.decision;
            let before = d.session_aal.map_or("-".to_string(), |a| a.to_string());
            let aal = match d.required {
                Some(q) => format!("{before} → {}", q.aal),
                None => before,
            };
            let factors = if d.eligible.is_empty() {
                d.required.map_or(String::new(), |q| q.factors.to_string())
            } else {
                d.eligible.to_string()
            };
            [
                e.index.to_string(),
                e.at.to_rfc3339()
                    .replace('T', " ")
                    .trim_end_matches('Z')
                    .to_string(),
                e.user.clone(),
                if e.application == r.scope.1 {
                    e.event.clone()
                } else if e.application.is_empty() {
                    format!("{} (tenant policies)", e.event)
                } else {
                    format!("{} ({})", e.event, e.application)
                },
                d.kind.as_str().to_string(),
                aal,
                factors,
                d.fired.join(", "),
            ]
        })
        .collect();
    let headers = [
        "#", "time", "user", "event", "decision", "aal", "factors", "policies",
    ];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(
        out,
        "  {}",
        paint(color, "2", &line(&headers.map(str::to_string)))
    );
    for (row, e) in rows.iter().zip(&r.events) {
        let k = e.decision.kind;
        let cells: Vec<String> = row
            .iter()
            .zip(widths.iter())
            .enumerate()
            .map(|(i, (c, w))| {
                let padded = format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count())));
                if i == 4 {
                    paint(color, decision_color(k), &padded)
                } else {
                    padded
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        if let Some(m) = &e.decision.message
            && k != DecisionKind::Allow
        {
            let _ = writeln!(out, "      {}", paint(color, "36", &format!("“{m}”")));
        }
        for err in &e.decision.errors {
            let _ = writeln!(
                out,
                "      {}",
                paint(color, "31", &format!("fail-closed: {err}"))
            );
        }
        for r in e.decision.report_only.iter().filter(|r| {
            matches!(
                r.would_be,
                stepup_engine::WouldBe::StepUp | stepup_engine::WouldBe::Deny
            )
        }) {
            let _ = writeln!(
                out,
                "      {}",
                paint(
                    color,
                    "35",
                    &format!("report-only {}: {}", r.policy, would_text(r))
                )
            );
        }
        if expect {
            for m in &e.mismatches {
                let _ = writeln!(
                    out,
                    "      {} {}: expected {}, got {}",
                    paint(color, "31", "✗ mismatch"),
                    m.field,
                    paint(color, "32", &m.expected),
                    paint(color, "31", &m.actual)
                );
            }
        }
        if explain {
            out.push_str(&explain_text(e, color));
        }
    }
    out
}

/// The engine's explanation of one event, as text.
#[must_use]
pub fn explain_text(e: &EventResult, color: bool) -> String {
    let mut out = String::new();
    let Some(t) = &e.decision.trace else {
        return out;
    };
    for p in &t.policies {
        let mark = if p.fired {
            paint(color, "33", "fired")
        } else {
            paint(color, "2", "not fired")
        };
        let sat = match (p.satisfied, &p.why) {
            (Some(true), Some(w)) => format!(" — satisfied: {w}"),
            (Some(false), Some(w)) => format!(" — not satisfied: {w}"),
            _ => String::new(),
        };
        let ro = if p.report_only { " [report-only]" } else { "" };
        let _ = writeln!(out, "      {}{ro} {mark} ({}){sat}", p.name, p.origin);
        for pr in &p.predicates {
            let note = pr
                .note
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "        {} = {}{note}",
                pr.predicate,
                serde_json::to_value(pr.value)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(r) = &e.decision.risk {
        let parts: Vec<String> = r
            .signals
            .iter()
            .map(|s| {
                format!(
                    "{} {}×{}",
                    s.signal.as_str(),
                    serde_json::to_value(s.value)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    s.weight
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "      risk {} = {}",
            r.score.map_or_else(
                || format!("unknown ({}..{})", r.range.min, r.range.max),
                |s| s.to_string()
            ),
            parts.join(", ")
        );
    }
    if let Some(m) = &t.merge {
        let _ = writeln!(out, "      merge: {m}");
    }
    for r in &e.decision.report_only {
        let _ = writeln!(
            out,
            "      report-only {}: {}{}",
            r.policy,
            crate::run::report_only_word(r),
            r.note
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        );
    }
    for n in &t.notes {
        let _ = writeln!(out, "      note: {n}");
    }
    out
}
