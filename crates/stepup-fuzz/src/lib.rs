//! The bodies of stepup's fuzz targets, as plain functions over bytes.
//!
//! Each target takes untrusted input the way the product does — policy text, RON scenario
//! files, decision-log lines, bearer tokens and HTTP headers — or builds a structured case from
//! the bytes with [`arbitrary`] (random policy sets, requests, states and failing stores), and
//! checks what must hold: no panic, the formatter's round trip, compiled ≡ reference
//! interpreter, and fail closed (SPEC §10). A broken invariant is returned as a [`Finding`];
//! a panic inside the product is left to unwind, so libFuzzer and the test harness both see it.
//!
//! Two drivers run them:
//! - `fuzz/` (cargo-fuzz, libFuzzer): millions of mutated inputs per target, with the slow
//!   input budget of [`run_timed`] turned into a crash (see `FUZZING.md`);
//! - this crate's tests (the CI smoke): every target over its seed corpus (`fuzz/seeds/`) and
//!   a bounded number of inputs mutated by [`mutate::Mutator`], each timed.

pub mod mutate;
pub mod structured;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A broken invariant, or an input that took too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The target that found it.
    pub target: &'static str,
    /// What broke.
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.target, self.what)
    }
}

impl std::error::Error for Finding {}

/// What a target body returns.
pub type Outcome = Result<(), Finding>;

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name (the cargo-fuzz target and the seed directory `fuzz/seeds/<name>/`).
    pub name: &'static str,
    /// Its body.
    pub run: fn(&[u8]) -> Outcome,
    /// The longest input worth generating for it.
    pub max_len: usize,
    /// Tokens the mutator splices in (keywords of the input language).
    pub dictionary: &'static [&'static str],
}

/// Every target, in the order the smoke runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "policy_text",
        run: targets::policy_text,
        max_len: 64 * 1024,
        dictionary: targets::POLICY_WORDS,
    },
    Target {
        name: "scenario_ron",
        run: targets::scenario_ron,
        max_len: 16 * 1024,
        dictionary: targets::RON_WORDS,
    },
    Target {
        name: "decision_log",
        run: targets::decision_log,
        max_len: 16 * 1024,
        dictionary: targets::LOG_WORDS,
    },
    Target {
        name: "http_token",
        run: targets::http_token,
        max_len: 4 * 1024,
        dictionary: targets::TOKEN_WORDS,
    },
    Target {
        name: "http_headers",
        run: targets::http_headers,
        max_len: 4 * 1024,
        dictionary: targets::HEADER_WORDS,
    },
    Target {
        name: "differential",
        run: structured::differential,
        max_len: 4 * 1024,
        dictionary: &[],
    },
];

/// The target named `name`.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Default budget of one input in [`run_timed`] when `STEPUP_FUZZ_SLOW_MS` is not set: one
/// second, for release builds (libFuzzer). The debug-build smoke passes its own.
pub const DEFAULT_SLOW: Duration = Duration::from_millis(1_000);

/// The slow-input budget: `STEPUP_FUZZ_SLOW_MS` milliseconds, else [`DEFAULT_SLOW`].
#[must_use]
pub fn slow_budget() -> Duration {
    std::env::var("STEPUP_FUZZ_SLOW_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_SLOW, Duration::from_millis)
}

/// Runs `target` on `data` and times it: a broken invariant, or an input that took longer than
/// `budget` (in each of three runs), is a finding (a slow input is a denial of service on a service that checks rules,
/// replays scenarios or reads logs).
///
/// # Errors
/// The finding.
pub fn run_timed(target: &Target, data: &[u8], budget: Duration) -> Result<Duration, Finding> {
    check_timed(target.name, target.run, data, budget)
}

/// [`run_timed`] for one body named directly: what the cargo-fuzz targets call, so that each
/// binary links (and libFuzzer instruments and scans on every run) only its own target's code.
///
/// # Errors
/// The finding.
pub fn check_timed(
    name: &'static str,
    run: fn(&[u8]) -> Outcome,
    data: &[u8],
    budget: Duration,
) -> Result<Duration, Finding> {
    let start = Instant::now();
    run(data)?;
    let mut took = start.elapsed();
    // Wall-clock time on a shared machine: a slow run is confirmed by running the input again
    // (the fastest of three counts), so that being descheduled is not a finding.
    for _ in 0..2 {
        if took <= budget {
            break;
        }
        let again = Instant::now();
        run(data)?;
        took = took.min(again.elapsed());
    }
    if took > budget {
        return Err(Finding {
            target: name,
            what: format!(
                "slow input: {} ms for {} bytes (budget {} ms)",
                took.as_millis(),
                data.len(),
                budget.as_millis()
            ),
        });
    }
    Ok(took)
}

/// The repository's root (the inputs of the seed corpora live under it).
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed corpus of a target: every file of `fuzz/seeds/<name>/`, sorted by name.
///
/// # Errors
/// When the directory cannot be read.
pub fn seeds(name: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = repo_root().join("fuzz/seeds").join(name);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        if p.is_file() {
            let bytes = std::fs::read(&p)?;
            out.push((p.display().to_string(), bytes));
        }
    }
    out.sort();
    Ok(out)
}
