//! Instruction counting: `valgrind --tool=callgrind target/release/examples/count CASE N` decides
//! CASE (no_candidate, near_miss, match, routine_allow, change_email_step_up,
//! shared20_allow, shared20_step_up, shared200_allow, shared200_step_up, one_script) N times; the
//! difference of two N gives instructions per decision (BENCHMARKS.md, the decision pipeline).
//! `par2:CASE` decides CASE on two threads at once (N each), on one compiled set;
//! `verdict:CASE` decides it as a verdict (`Record::Verdict`: no audit record).
//! `compile_10k` compiles the 10,000-policy workload N times (parsed and checked once);
//! `parse_check_10k` parses and checks it N times, `parse_check_compile_10k` also compiles it,
//! `parse_check_10k_files` parses and checks it as ten files, one per tenant;
//! `parse_check_compile_10k_ready` loads it N times and frees the sets after the last, printing
//! the loads' time (with the workload's generation) to stderr.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use std::hint::black_box;
use stepup_benches::*;
use stepup_engine::CompiledSet;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `par2:CASE` decides CASE on two threads at once, N times each, on one compiled set:
    // what deciding shares between threads shows as time the second thread adds.
    let (threads, case) = match args[1].strip_prefix("par2:") {
        Some(case) => (2, case),
        None => (1, args[1].as_str()),
    };
    // `verdict:CASE` decides CASE as a verdict: no audit record, no risk breakdown.
    let (record, case) = match case.strip_prefix("verdict:") {
        Some(case) => (stepup_engine::Record::Verdict, case),
        None => (stepup_engine::Record::Decision, case),
    };
    let n: u64 = args[2].parse().unwrap();
    let started = std::time::Instant::now();
    if case == "parse_check_10k_files" {
        // The same 10,000 policies as ten files, one per tenant block (files read apart).
        let (text, _) = scale_text(10_000);
        let mut src = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let cut = rest
                .get(1..)
                .and_then(|r| r.find("\ntenant "))
                .map_or(rest.len(), |i| i + 2);
            let (head, tail) = rest.split_at(cut);
            src.push(stepup_dsl::Source::text(
                &format!("scale_{}.policy", src.len()),
                head,
            ));
            rest = tail;
        }
        for _ in 0..n {
            black_box(stepup_dsl::load_sources(black_box(&src)));
        }
        return;
    }
    if case == "parse_check_compile_10k_ready" {
        // Parses, checks and compiles the workload N times, the sets freed after the last (as
        // `compile/parse_check_compile_10000_ready` times it).
        let (text, _) = scale_text(10_000);
        let src = vec![stepup_dsl::Source::text("scale_10000.policy", &text)];
        let sets: Vec<CompiledSet> = (0..n)
            .map(|_| {
                let loaded = stepup_dsl::load_sources(black_box(&src));
                black_box(CompiledSet::compile(loaded.set.unwrap()).unwrap())
            })
            .collect();
        // The time to here is the loads'; the caller reads it from stderr.
        eprintln!("loads: {:?}", started.elapsed());
        drop(sets);
        return;
    }
    if case == "parse_check_10k" || case == "parse_check_compile_10k" {
        // Parses and checks (and, for the second case, compiles) the 10,000-policy workload N
        // times: the language's share of `compile/parse_check_compile_10000`.
        let (text, _) = scale_text(10_000);
        let src = vec![stepup_dsl::Source::text("scale_10000.policy", &text)];
        for _ in 0..n {
            let loaded = stepup_dsl::load_sources(black_box(&src));
            if case == "parse_check_compile_10k" {
                black_box(CompiledSet::compile(loaded.set.unwrap()).unwrap());
            } else {
                black_box(loaded);
            }
        }
        return;
    }
    if case == "compile_10k" {
        // Compiles the 10,000-policy workload (parsed and checked once) N times.
        let (text, _) = scale_text(10_000);
        let src = vec![stepup_dsl::Source::text("scale_10000.policy", &text)];
        let model = stepup_dsl::load_sources(&src).set.unwrap();
        for _ in 0..n {
            black_box(CompiledSet::compile(black_box(model.clone())).unwrap());
        }
        return;
    }
    if case == "one_script" {
        // One scripted predicate (`rhai/one_script` in benches/decision.rs).
        let (_, set, req, state) = script_workload();
        for _ in 0..n {
            black_box(set.decide(black_box(&req), &state, false));
        }
        return;
    }
    let ps = predicates(20, 8, 7);
    let text = stepup_text("bench", &[], &ps, 8);
    let path = write_workload("count", &text).unwrap();
    let set20 = CompiledSet::load(&[path]).unwrap();
    let rules =
        CompiledSet::load(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")])
            .unwrap();
    let target = &ps[3];
    let shared = |n: usize| {
        let (ps, _, step_up, allow) = shared_op(n, 16);
        let path = write_workload(&format!("count_shared_{n}"), &shared_op_text(&ps)).unwrap();
        (CompiledSet::load(&[path]).unwrap(), step_up, allow)
    };
    let owned;
    let (set, req, state) = match case {
        "shared20_allow" | "shared20_step_up" | "shared200_allow" | "shared200_step_up" => {
            let n = if case.starts_with("shared200") {
                200
            } else {
                20
            };
            let (set, step_up, allow) = shared(n);
            let (r, s) = if case.ends_with("allow") {
                allow
            } else {
                step_up
            }
            .stepup();
            owned = set;
            (&owned, r, s)
        }
        "match" => {
            let (r, s) = Input::matching(target).stepup("bench", "");
            (&set20, r, s)
        }
        "near_miss" => {
            let (r, s) = Input::near_miss(target).stepup("bench", "");
            (&set20, r, s)
        }
        "no_candidate" => {
            let (mut r, s) = Input::matching(target).stepup("bench", "");
            r.event = stepup_engine::Event::Operation {
                name: "o7".into(),
                attrs: vec![],
                context: None,
            };
            (&set20, r, s)
        }
        "routine_allow" | "change_email_step_up" => {
            let (mut r, s) = Input::near_miss(&predicates(1, 1, 1)[0]).stepup("acme", "dashboard");
            r.event = stepup_engine::Event::Operation {
                name: if case == "routine_allow" {
                    "view_profile"
                } else {
                    "change_email"
                }
                .into(),
                attrs: vec![],
                context: None,
            };
            (&rules, r, s)
        }
        _ => panic!("case"),
    };
    // Each thread decides its own request, its names in allocations of their own (as two
    // services' requests are): what the threads then share is the compiled set's.
    let own = |r: &stepup_engine::Request| stepup_engine::Request {
        tenant: std::sync::Arc::from(&*r.tenant),
        application: std::sync::Arc::from(&*r.application),
        user: std::sync::Arc::from(&*r.user),
        session: std::sync::Arc::from(&*r.session),
        ..r.clone()
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            let req = own(&req);
            let state = &state;
            s.spawn(move || {
                // Each record a constant of its own loop, as a caller's would be.
                if record == stepup_engine::Record::Verdict {
                    for _ in 0..n {
                        black_box(set.decide_with(
                            black_box(&req),
                            state,
                            stepup_engine::Record::Verdict,
                        ));
                    }
                } else {
                    for _ in 0..n {
                        black_box(set.decide(black_box(&req), state, false));
                    }
                }
            });
        }
    });
}
