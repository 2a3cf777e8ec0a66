//! stepup, Cedar and Rego side by side on 20 policies × 10 predicates, each peer's answer
//! checked equal to ours before it is timed. `cargo bench -p stepup-benches --features peers`.

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
use stepup_benches::peers::{Cedar, Rego};
use stepup_benches::{Input, predicates, scale_text, stepup_text, write_workload};
use stepup_engine::CompiledSet;

fn side_by_side(
    c: &mut Criterion,
    group: &str,
    ps: &[stepup_benches::Predicates],
    stepup: &CompiledSet,
    tenant: &str,
    target: usize,
) {
    let cedar = Cedar::new(ps);
    let mut rego = Rego::new(ps);
    let mut g = c.benchmark_group(group);
    for (name, input) in [
        ("match", Input::matching(&ps[target])),
        ("near_miss", Input::near_miss(&ps[target])),
    ] {
        let (req, state) = input.stepup(tenant, "");
        let ours = stepup.decide(&req, &state, false).fired;
        let cr = Cedar::request(&input);
        let ri = Rego::input(&input);
        assert_eq!(cedar.fired(&cr), *ours, "Cedar agrees on {name}");
        assert_eq!(rego.fired(&ri), *ours, "Rego agrees on {name}");
        g.bench_function(BenchmarkId::new("stepup", name), |b| {
            b.iter(|| black_box(stepup.decide(black_box(&req), &state, false)))
        });
        g.bench_function(BenchmarkId::new("cedar", name), |b| {
            b.iter(|| black_box(cedar.fired(black_box(&cr))))
        });
        g.bench_function(BenchmarkId::new("rego", name), |b| {
            b.iter(|| black_box(rego.fired(black_box(&ri))))
        });
    }
    g.finish();
}

fn peers(c: &mut Criterion) {
    let ps = predicates(20, 8, 7);
    let set =
        CompiledSet::load(&[
            write_workload("twenty_by_ten", &stepup_text("bench", &[], &ps, 8)).unwrap(),
        ])
        .unwrap();
    side_by_side(c, "peers/20x10", &ps, &set, "bench", 3);
    for n in [100usize, 1_000] {
        let (text, first) = scale_text(n);
        let set =
            CompiledSet::load(&[write_workload(&format!("scale_{n}"), &text).unwrap()]).unwrap();
        // Peers get tenant t0's policies (at most 1,000): a single-tenant deployment of theirs.
        side_by_side(c, &format!("peers/scale_{n}"), &first, &set, "t0", 0);
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
