//! `stepup-studio [RULES_DIR] [SCENARIOS_DIR] [--select SCENARIO:EVENT]
//! [--decision-log LOG [--compare RULES_DIR]]` (defaults: `rules/` and `examples/scenarios/`).

use std::path::PathBuf;

use stepup_studio::studio::Command;

const USAGE: &str = "usage: stepup-studio [RULES_DIR] [SCENARIOS_DIR] [--select SCENARIO:EVENT] [--decision-log LOG [--compare RULES_DIR]]";

/// A usage error: what is wrong, the usage, exit 2.
fn usage_error(what: &str) -> std::process::ExitCode {
    eprintln!("error: {what}");
    eprintln!("{USAGE}");
    std::process::ExitCode::from(2)
}

fn main() -> std::process::ExitCode {
    let mut dirs = Vec::new();
    let mut select: Option<String> = None;
    let mut log: Option<PathBuf> = None;
    let mut compare: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--select" {
            select = args.next();
        } else if a == "--decision-log" {
            log = args.next().map(PathBuf::from);
        } else if a == "--compare" {
            compare = args.next().map(PathBuf::from);
        } else if a == "--help" || a == "-h" {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        } else if a.starts_with('-') && a != "-" {
            return usage_error(&format!("unknown option `{a}`"));
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    if dirs.len() > 2 {
        return usage_error("at most two directories: the rules, then the scenarios");
    }
    let mut dirs = dirs.into_iter();
    let rules = dirs.next().unwrap_or_else(|| PathBuf::from("rules"));
    let scenarios = dirs
        .next()
        .unwrap_or_else(|| PathBuf::from("examples/scenarios"));
    // A path that is not there opens an empty studio that looks like one with no rules (a
    // review): it is refused, as the CLI refuses it.
    for (what, path) in [("rules", &rules), ("scenarios", &scenarios)] {
        if !path.exists() {
            eprintln!("error: the {what} path `{}` does not exist", path.display());
            return std::process::ExitCode::from(2);
        }
    }
    if let Some(s) = &select
        && s.split_once(':')
            .is_none_or(|(_, e)| e.parse::<usize>().is_err())
    {
        return usage_error(&format!(
            "`--select {s}`: write SCENARIO:EVENT, e.g. `01_sensitive_operation:3`"
        ));
    }
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
                } else {
                    eprintln!("warning: `--select`: no scenario file starts with `{name}`");
                }
            }
            if let Some(log) = log {
                app.log_path = log.display().to_string();
                app.log_compare = compare
                    .as_ref()
                    .map(|c| c.display().to_string())
                    .unwrap_or_default();
                app.bottom = stepup_studio::app::BottomView::DecisionLog;
                app.studio.apply(Command::OpenDecisionLog { log, compare });
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
