//! cargo-fuzz target `decision_log`: the body is `stepup_fuzz::targets::decision_log` (see FUZZING.md). A
//! broken invariant, or an input slower than `STEPUP_FUZZ_SLOW_MS` (default 1000), is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = stepup_fuzz::check_timed(
        "decision_log",
        stepup_fuzz::targets::decision_log,
        data,
        stepup_fuzz::slow_budget(),
    ) {
        panic!("{f}");
    }
});
