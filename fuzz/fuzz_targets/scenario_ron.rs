//! cargo-fuzz target `scenario_ron`: the body is `stepup_fuzz::targets::scenario_ron` (see FUZZING.md). A
//! broken invariant, or an input slower than `STEPUP_FUZZ_SLOW_MS` (default 1000), is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = stepup_fuzz::check_timed(
        "scenario_ron",
        stepup_fuzz::targets::scenario_ron,
        data,
        stepup_fuzz::slow_budget(),
    ) {
        panic!("{f}");
    }
});
