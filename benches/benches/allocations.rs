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
use stepup_benches::{Input, predicates, stepup_text, write_workload};
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
}
