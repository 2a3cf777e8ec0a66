//! `stepup-studio [RULES_DIR] [SCENARIOS_DIR] [--select SCENARIO:EVENT]`
//! (defaults: `rules/` and `examples/scenarios/`).

use std::path::PathBuf;

use stepup_studio::studio::Command;

fn main() -> std::process::ExitCode {
    let mut dirs = Vec::new();
    let mut select: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--select" {
            select = args.next();
        } else if a == "--help" || a == "-h" {
            println!("usage: stepup-studio [RULES_DIR] [SCENARIOS_DIR] [--select SCENARIO:EVENT]");
            return std::process::ExitCode::SUCCESS;
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    let mut dirs = dirs.into_iter();
    let rules = dirs.next().unwrap_or_else(|| PathBuf::from("rules"));
    let scenarios = dirs
        .next()
        .unwrap_or_else(|| PathBuf::from("examples/scenarios"));
    let result = eframe::run_native(
        "stepup studio",
        stepup_studio::app::native_options(),
        Box::new(move |cc| {
            let mut app = stepup_studio::StudioApp::from_creation(cc, rules, scenarios);
            if let Some((name, event)) = select.as_deref().and_then(|s| s.split_once(':')) {
                let found = app.studio.scenarios.iter().position(|s| {
                    s.path
                        .file_stem()
                        .is_some_and(|n| n.to_string_lossy().starts_with(name))
                });
                if let Some(i) = found {
                    app.studio.apply(Command::SelectScenario(i));
                    app.studio
                        .apply(Command::SelectEvent(event.parse().unwrap_or(0)));
                }
            }
            Ok(Box::new(app))
        }),
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: stepup-studio could not open a window: {e}");
            eprintln!(
                "hint: it needs a display (X11 or Wayland); headless, run it under `xvfb-run` (see scripts/screenshot.sh)"
            );
            std::process::ExitCode::from(2)
        }
    }
}
