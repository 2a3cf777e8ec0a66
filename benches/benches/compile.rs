//! Parse + check + compile time of 10,000 policies (about 4 MB), and MB/s; parse + check alone
//! and parse alone, to tell the stages apart. The set ready with the previous one freed in the
//! loop (as measured since issue 16 was filed), the set ready alone (freed outside the timing:
//! a reload frees the set it replaces on a thread of its own, `Engine::swap`), and freeing a
//! compiled set alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmarks: a setup failure stops the run"
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stepup_benches::{scale_text, write_workload};

fn compile(c: &mut Criterion) {
    let (text, _) = scale_text(10_000);
    write_workload("scale_10000", &text).unwrap();
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    let src = vec![stepup_dsl::Source::text("scale_10000.policy", &text)];
    g.bench_function("parse_check_compile_10000", |b| {
        b.iter(|| {
            let loaded = stepup_dsl::load_sources(black_box(&src));
            black_box(stepup_engine::CompiledSet::compile(loaded.set.unwrap()).unwrap())
        });
    });
    // The same, each set freed after the timing: how long until a reload's new set can serve.
    g.bench_function("parse_check_compile_10000_ready", |b| {
        b.iter_with_large_drop(|| {
            let loaded = stepup_dsl::load_sources(black_box(&src));
            stepup_engine::CompiledSet::compile(loaded.set.unwrap()).unwrap()
        });
    });
    // Freeing a compiled set of 10,000 policies alone (on one thread, as a replaced set is).
    g.bench_function("free_10000", |b| {
        b.iter_batched(
            || {
                let loaded = stepup_dsl::load_sources(&src);
                stepup_engine::CompiledSet::compile(loaded.set.unwrap()).unwrap()
            },
            drop,
            BatchSize::PerIteration,
        );
    });
    // The language's share (parse, checks, lints, the set's hash), without the engine's lowering.
    g.bench_function("parse_check_10000", |b| {
        b.iter(|| black_box(stepup_dsl::load_sources(black_box(&src))))
    });
    g.bench_function("parse_only_10000", |b| {
        b.iter(|| black_box(stepup_dsl::parse_text("x.policy", black_box(&text)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
