//! `stepup-studio [RULES_DIR] [SCENARIOS_DIR]` (defaults: `rules/` and `examples/scenarios/`).

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let rules = args
        .next()
        .map_or_else(|| PathBuf::from("rules"), PathBuf::from);
    let scenarios = args
        .next()
        .map_or_else(|| PathBuf::from("examples/scenarios"), PathBuf::from);
    let result = eframe::run_native(
        "stepup studio",
        stepup_studio::app::native_options(),
        Box::new(move |cc| {
            Ok(Box::new(stepup_studio::StudioApp::from_creation(
                cc, rules, scenarios,
            )))
        }),
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: stepup-studio could not open a window: {e}");
            eprintln!(
                "hint: it needs a display (X11 or Wayland); headless, run it under `xvfb-run` (scripts/screenshot.sh)"
            );
            std::process::ExitCode::from(2)
        }
    }
}
