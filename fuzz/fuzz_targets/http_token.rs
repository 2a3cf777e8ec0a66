//! cargo-fuzz target `http_token`: the body is `stepup_fuzz::targets::http_token` (see FUZZING.md). A
//! broken invariant, or an input slower than `STEPUP_FUZZ_SLOW_MS` (default 1000), is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = stepup_fuzz::check_timed(
        "http_token",
        stepup_fuzz::targets::http_token,
        data,
        stepup_fuzz::slow_budget(),
    ) {
        panic!("{f}");
    }
});
