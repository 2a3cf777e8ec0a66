//! Decision latency: the compiled tree, the reference interpreter and explanations, on the
//! source document's rules, on 20 policies × 10 predicates (its step-up also as a verdict, with
//! no audit record), and at 100 to 10,000 policies;
//! the rhai escape hatch's cost; end-to-end replay of `examples/scenarios/`.

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
use stepup_benches::{Input, predicates, root, scale_text, stepup_text, write_workload};
use stepup_engine::{CompiledSet, DecisionKind, Engine, MemoryStore, Record};

fn twenty_by_ten(c: &mut Criterion) {
    let ps = predicates(20, 8, 7);
    let text = stepup_text("bench", &[], &ps, 8);
    let path = write_workload("twenty_by_ten", &text).unwrap();
    let set = CompiledSet::load(&[path]).unwrap();
    let target = &ps[3];
    let cases = [
        ("match", Input::matching(target)),
        ("near_miss", Input::near_miss(target)),
        (
            "no_candidate",
            Input {
                op: "o_none".into(),
                ..Input::matching(target)
            },
        ),
    ];
    let mut g = c.benchmark_group("decision/20x10");
    for (name, input) in &cases {
        let (req, state) = input.stepup("bench", "");
        let mut req = req;
        if *name == "no_candidate" {
            // An operation no policy names: declared, so the tenant's catalog accepts it.
            req.event = stepup_engine::Event::Operation {
                name: "o7".into(),
                attrs: vec![],
                context: None,
            };
        }
        let d = set.decide(&req, &state, false);
        assert_eq!(
            set.decide_reference(&req, &state),
            d,
            "compiled and reference agree"
        );
        if *name == "match" {
            assert_eq!(d.kind, DecisionKind::StepUp);
            // The step-up as a verdict: the same decision without audit record.
            let v = set.decide_with(&req, &state, Record::Verdict);
            assert_eq!((v.kind, &v.fired, v.audit.len()), (d.kind, &d.fired, 0));
            g.bench_with_input(BenchmarkId::new("verdict", name), &(), |b, ()| {
                b.iter(|| black_box(set.decide_with(black_box(&req), &state, Record::Verdict)))
            });
        }
        g.bench_with_input(BenchmarkId::new("compiled", name), &(), |b, ()| {
            b.iter(|| black_box(set.decide(black_box(&req), &state, false)))
        });
        g.bench_with_input(BenchmarkId::new("reference", name), &(), |b, ()| {
            b.iter(|| black_box(set.decide_reference(black_box(&req), &state)))
        });
        g.bench_with_input(BenchmarkId::new("explain", name), &(), |b, ()| {
            b.iter(|| black_box(set.decide(black_box(&req), &state, true)))
        });
    }
    g.finish();
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision/scale");
    for n in [20usize, 100, 1_000, 10_000] {
        let (text, ps) = scale_text(n);
        let path = write_workload(&format!("scale_{n}"), &text).unwrap();
        let set = CompiledSet::load(&[path]).unwrap();
        for (name, input) in [
            ("near_miss", Input::near_miss(&ps[0])),
            ("match", Input::matching(&ps[0])),
        ] {
            let (req, state) = input.stepup("t0", "web");
            g.bench_with_input(BenchmarkId::new(name, n), &(), |b, ()| {
                b.iter(|| black_box(set.decide(black_box(&req), &state, false)))
            });
        }
    }
    g.finish();
}

fn source_document(c: &mut Criterion) {
    let set = CompiledSet::load(&[root().join("rules")]).unwrap();
    let mut g = c.benchmark_group("decision/rules");
    let mut routine = Input::near_miss(&predicates(1, 1, 1)[0]).stepup("acme", "dashboard");
    routine.0.event = stepup_engine::Event::Operation {
        name: "view_profile".into(),
        attrs: vec![],
        context: None,
    };
    let mut email = routine.clone();
    email.0.event = stepup_engine::Event::Operation {
        name: "change_email".into(),
        attrs: vec![],
        context: None,
    };
    let mut sign_in = routine.clone();
    sign_in.0.event = stepup_engine::Event::SignIn {
        context: stepup_engine::Context {
            device: Some("laptop-1".into()),
            ip: Some("198.51.100.7".into()),
            country: Some("FR".into()),
            location: Some(stepup_engine::Location {
                lat: 48.85,
                lon: 2.35,
            }),
            platform_risk: None,
        },
        factors: stepup_core::FactorSet::one(stepup_core::Factor::Password),
    };
    for (name, (req, state)) in [
        ("routine_allow", &routine),
        ("change_email_step_up", &email),
        ("sign_in_signals", &sign_in),
    ] {
        g.bench_function(BenchmarkId::new("compiled", name), |b| {
            b.iter(|| black_box(set.decide(black_box(req), state, false)))
        });
        g.bench_function(BenchmarkId::new("explain", name), |b| {
            b.iter(|| black_box(set.decide(black_box(req), state, true)))
        });
    }
    g.finish();
}

fn rhai(c: &mut Criterion) {
    let (plain, scripted, req, state) = stepup_benches::script_workload();
    let mut g = c.benchmark_group("rhai");
    g.bench_function("no_script", |b| {
        b.iter(|| black_box(plain.decide(black_box(&req), &state, false)))
    });
    g.bench_function("one_script", |b| {
        b.iter(|| black_box(scripted.decide(black_box(&req), &state, false)))
    });
    g.finish();
}

fn replay(c: &mut Criterion) {
    let engine = Engine::load(&[root().join("rules")]).unwrap();
    let dir = root().join("examples/scenarios");
    let files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    let set = engine.current();
    let loaded: Vec<_> = files
        .iter()
        .map(|(n, t)| stepup_replay::load(n, t, &set).unwrap())
        .collect();
    let events: usize = loaded.iter().map(|l| l.scenario.events.len()).sum();
    let mut g = c.benchmark_group("replay");
    g.throughput(criterion::Throughput::Elements(events as u64));
    g.bench_function("examples_memory", |b| {
        b.iter(|| {
            let store = MemoryStore::new();
            for l in &loaded {
                black_box(stepup_replay::replay(l, &engine, &store).unwrap());
            }
        });
    });
    g.finish();
}

criterion_group!(benches, twenty_by_ten, scale, source_document, rhai, replay);
criterion_main!(benches);
