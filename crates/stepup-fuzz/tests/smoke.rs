//! The CI fuzz smoke: every target over its seed corpus (`fuzz/seeds/<target>/`) and a bounded
//! number of seeded mutations of it, each input timed. A crash fails the test (the panic
//! unwinds through it); a broken invariant or a slow input is reported with the seed of the
//! mutator and the input, so it can be replayed. The long campaign is `scripts/fuzz.sh`
//! (libFuzzer, `fuzz/`); found crashes become regression tests here (`regressions`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::time::{Duration, Instant};

use stepup_fuzz::mutate::Mutator;
use stepup_fuzz::{Finding, TARGETS, Target, run_timed, seeds, target};

/// Mutated inputs per target (plus the seeds). Override with `STEPUP_FUZZ_SMOKE_RUNS`.
const RUNS: usize = 1_000;

/// In the ordinary suite the budget is a hang guard, not a speed test (tests never assert
/// timings: a shared CI machine would make them flaky). Slow inputs are flagged by the
/// campaign (`scripts/fuzz.sh`: libFuzzer's `-timeout` and `STEPUP_FUZZ_SLOW_MS`), and the
/// slowest input of each smoke is printed.
const SLOW: Duration = Duration::from_secs(60);

fn runs() -> usize {
    std::env::var("STEPUP_FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS)
}

fn show(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    if text.len() > 2_000 {
        let cut = (0..=2_000)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}… ({} bytes)", &text[..cut], data.len())
    } else {
        format!("{text:?}")
    }
}

/// Seeds, then `runs` mutations of random seeds; returns the number of inputs run.
fn smoke(t: &Target, seed: u64) -> usize {
    let corpus = seeds(t.name).unwrap_or_else(|e| panic!("seeds of {}: {e}", t.name));
    assert!(!corpus.is_empty(), "{}: an empty seed corpus", t.name);
    let start = Instant::now();
    let mut slowest = (Duration::ZERO, 0usize);
    let mut check = |label: &str, data: &[u8]| match run_timed(t, data, SLOW) {
        Ok(took) => {
            if took > slowest.0 {
                slowest = (took, data.len());
            }
        }
        Err(Finding { what, .. }) => panic!(
            "{}: {what}\ninput ({label}): {}\nreplay: STEPUP_FUZZ_SMOKE_SEED={seed} cargo test -p stepup-fuzz --test smoke {}",
            t.name,
            show(data),
            t.name
        ),
    };
    for (name, data) in &corpus {
        check(name, data);
    }
    let mut m = Mutator::new(seed ^ t.name.len() as u64);
    let n = runs();
    for i in 0..n {
        let base = &corpus[m.below(corpus.len())].1;
        let other = &corpus[m.below(corpus.len())].1;
        let data = if i % 10 == 9 {
            // Now and then a fresh random input, not a mutation.
            let len = m.below(t.max_len.min(2_048));
            m.bytes(len)
        } else {
            m.mutate(base, other, t.dictionary, t.max_len)
        };
        check(&format!("mutation {i}"), &data);
    }
    eprintln!(
        "{}: {} seeds + {n} mutations in {:.1} s; slowest input {} ms ({} bytes)",
        t.name,
        corpus.len(),
        start.elapsed().as_secs_f64(),
        slowest.0.as_millis(),
        slowest.1
    );
    corpus.len() + n
}

fn smoke_seed() -> u64 {
    std::env::var("STEPUP_FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_2026_1128)
}

fn run(name: &str) {
    let t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let n = smoke(t, smoke_seed());
    assert!(n > runs(), "{name}: ran {n} inputs");
}

#[test]
fn policy_text() {
    run("policy_text");
}

#[test]
fn scenario_ron() {
    run("scenario_ron");
}

#[test]
fn decision_log() {
    run("decision_log");
}

#[test]
fn http_token() {
    run("http_token");
}

#[test]
fn http_headers() {
    run("http_headers");
}

#[test]
fn differential() {
    run("differential");
}

#[test]
fn every_target_has_a_smoke_test_and_seeds() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "policy_text",
            "scenario_ron",
            "decision_log",
            "http_token",
            "http_headers",
            "differential"
        ]
    );
    for t in TARGETS {
        assert!(!seeds(t.name).unwrap().is_empty(), "{}", t.name);
        let fuzz_target = stepup_fuzz::repo_root()
            .join("fuzz/fuzz_targets")
            .join(format!("{}.rs", t.name));
        assert!(fuzz_target.is_file(), "{} has no cargo-fuzz target", t.name);
    }
}

/// The detector itself: a body slower than the budget is a finding, not a pass.
#[test]
fn a_slow_input_is_flagged() {
    fn sleepy(data: &[u8]) -> stepup_fuzz::Outcome {
        std::thread::sleep(Duration::from_millis(data.len() as u64));
        Ok(())
    }
    let t = Target {
        name: "sleepy",
        run: sleepy,
        max_len: 100,
        dictionary: &[],
    };
    assert!(run_timed(&t, &[0; 5], Duration::from_secs(10)).is_ok());
    let slow = run_timed(&t, &[0; 80], Duration::from_millis(50)).unwrap_err();
    assert_eq!(slow.target, "sleepy");
    assert!(
        slow.what.starts_with("slow input: ") && slow.what.ends_with("for 80 bytes (budget 50 ms)"),
        "{}",
        slow.what
    );
}

/// The mutator is deterministic: the same seed replays the same inputs.
#[test]
fn the_mutator_replays_from_its_seed() {
    let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
    for _ in 0..100 {
        assert_eq!(
            a.mutate(
                b"when new_device require aal2",
                b"risk >= 70",
                &["totp"],
                64
            ),
            b.mutate(
                b"when new_device require aal2",
                b"risk >= 70",
                &["totp"],
                64
            )
        );
    }
}
