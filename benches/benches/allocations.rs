//! Allocations per decision, counted with a counting global allocator (not timed).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmarks: a setup failure stops the run"
)]

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stepup_benches::{Input, predicates, shared_op, shared_op_text, stepup_text, write_workload};
use stepup_engine::CompiledSet;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less arguments; only measure when benchmarking.
    let ps = predicates(20, 8, 7);
    let set =
        CompiledSet::load(&[
            write_workload("twenty_by_ten", &stepup_text("bench", &[], &ps, 8)).unwrap(),
        ])
        .unwrap();
    println!("allocations per decision (20 policies x 10 predicates):");
    for (name, input) in [
        ("match (step_up)", Input::matching(&ps[3])),
        ("near_miss (allow)", Input::near_miss(&ps[3])),
    ] {
        let (req, state) = input.stepup("bench", "");
        let _ = set.decide(&req, &state, false);
        let region = Region::new(GLOBAL);
        let n = 1_000;
        for _ in 0..n {
            std::hint::black_box(set.decide(&req, &state, false));
        }
        let s = region.change();
        println!(
            "  {name:<20} {:>6.1} allocations, {:>8.1} bytes",
            s.allocations as f64 / f64::from(n),
            s.bytes_allocated as f64 / f64::from(n)
        );
    }
    println!("allocations per decision (N policies x 10 predicates, all on one operation):");
    for n in [20usize, 200, 2_000] {
        let (ps, _, step_up, allow) = shared_op(n, 16);
        let path = write_workload(&format!("shared_op_{n}"), &shared_op_text(&ps)).unwrap();
        let set = CompiledSet::load(&[path]).unwrap();
        for (name, input) in [("step_up", &step_up), ("allow", &allow)] {
            let (req, state) = input.stepup();
            let _ = set.decide(&req, &state, false);
            let region = Region::new(GLOBAL);
            let runs = 1_000;
            for _ in 0..runs {
                std::hint::black_box(set.decide(&req, &state, false));
            }
            let s = region.change();
            println!(
                "  {n:>5} {name:<14} {:>6.1} allocations, {:>8.1} bytes",
                s.allocations as f64 / f64::from(runs),
                s.bytes_allocated as f64 / f64::from(runs)
            );
        }
    }
    // Loading: what each stage of reading 10,000 policies allocates (each allocation is also a
    // free when the set is replaced).
    println!("allocations to load 10,000 policies (compile/parse_check_compile_10000's text):");
    let (text, _) = stepup_benches::scale_text(10_000);
    let src = vec![stepup_dsl::Source::text("scale_10000.policy", &text)];
    let region = Region::new(GLOBAL);
    let parsed = stepup_dsl::parse_text("scale_10000.policy", &text).unwrap();
    let parse = region.change();
    drop(parsed);
    let region = Region::new(GLOBAL);
    let loaded = stepup_dsl::load_sources(&src);
    let check = region.change();
    let region = Region::new(GLOBAL);
    let set = CompiledSet::compile(loaded.set.unwrap()).unwrap();
    let compile = region.change();
    std::hint::black_box(set);
    for (name, s) in [
        ("parse (syntax tree)", parse),
        ("parse + check, in all", check),
        ("compile (from the model)", compile),
    ] {
        println!(
            "  {name:<26} {:>9} allocations, {:>6.1} MB",
            s.allocations,
            s.bytes_allocated as f64 / 1e6
        );
    }
}
