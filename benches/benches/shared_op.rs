//! Policies that all guard one operation (issue 16): 20, 200 and 2,000 policies × 10
//! predicates — `operation == payout`, two numeric ranges, a numeric bound, three set
//! memberships, a flag — so the operation index prunes nothing. Two decisions per size: an
//! *allow* (nine of the target policy's ten predicates hold, no policy fires) and a *step-up*
//! (exactly the target fires: challenge, audit record, new session state), and that step-up as
//! a verdict (`Record::Verdict`: the same decision without audit record). With `--features
//! peers`, Cedar and Rego decide the same requests in the same run; each engine's set of
//! matching policies is checked equal to stepup's `fired` list before anything is timed.
//! `cargo bench -p stepup-benches --features peers --bench shared_op`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmarks: a setup failure stops the run"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stepup_benches::{shared_op, shared_op_text, write_workload};
use stepup_engine::{CompiledSet, DecisionKind, Record};

/// The sizes measured.
const SIZES: [usize; 3] = [20, 200, 2_000];

fn shared_operation(c: &mut Criterion) {
    for n in SIZES {
        let (ps, target, step_up, allow) = shared_op(n, 16);
        let path = write_workload(&format!("shared_op_{n}"), &shared_op_text(&ps)).unwrap();
        let set = CompiledSet::load(&[path]).unwrap();
        #[cfg(feature = "peers")]
        let (cedar, mut rego) = (
            stepup_benches::peers::Cedar::shared_op(&ps),
            stepup_benches::peers::Rego::shared_op(&ps),
        );
        let mut g = c.benchmark_group(format!("shared_op/{n}"));
        for (name, input) in [("allow", &allow), ("step_up", &step_up)] {
            let (req, state) = input.stepup();
            let d = set.decide(&req, &state, false);
            let expected: Vec<String> = ps
                .iter()
                .filter(|p| p.matches(input))
                .map(|p| p.id.clone())
                .collect();
            assert_eq!(
                *d.fired, *expected,
                "stepup fires what the predicates say ({name})"
            );
            assert_eq!(
                set.decide_reference(&req, &state),
                d,
                "compiled and reference agree ({name})"
            );
            match name {
                "allow" => assert!(d.succeeded() && d.fired.is_empty(), "{d:?}"),
                _ => {
                    assert_eq!(d.kind, DecisionKind::StepUp, "{d:?}");
                    assert_eq!(*d.fired, [ps[target].id.clone()]);
                }
            }
            g.bench_function(BenchmarkId::new("stepup", name), |b| {
                b.iter(|| black_box(set.decide(black_box(&req), &state, false)))
            });
            if name == "step_up" {
                // The same step-up as a verdict: no audit record, no risk breakdown (what a
                // caller that keeps neither asks for; Cedar's answer has neither).
                let v = set.decide_with(&req, &state, Record::Verdict);
                assert_eq!((v.kind, &v.fired, v.audit.len()), (d.kind, &d.fired, 0));
                g.bench_function(BenchmarkId::new("stepup", "step_up_verdict"), |b| {
                    b.iter(|| black_box(set.decide_with(black_box(&req), &state, Record::Verdict)))
                });
            }
            #[cfg(feature = "peers")]
            {
                use stepup_benches::peers::{Cedar, Rego};
                let cr = Cedar::shared_op_request(input);
                let ri = Rego::shared_op_input(input);
                assert_eq!(cedar.fired(&cr), *d.fired, "Cedar agrees ({n}, {name})");
                assert_eq!(rego.fired(&ri), *d.fired, "Rego agrees ({n}, {name})");
                g.bench_function(BenchmarkId::new("cedar", name), |b| {
                    b.iter(|| black_box(cedar.fired(black_box(&cr))))
                });
                g.bench_function(BenchmarkId::new("rego", name), |b| {
                    b.iter(|| black_box(rego.fired(black_box(&ri))))
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, shared_operation);
criterion_main!(benches);
