//! The `stepup` command line: `check`, `fmt`, `explain`, `replay` and `backtest`.
//!
//! Exit codes: 0 success (warnings allowed), 1 errors or mismatches, 2 usage or I/O errors.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod backtest;
mod check;
mod replay;

/// Output format of diagnostics and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Coloured on a terminal, plain otherwise.
    Human,
    /// Plain text, never coloured.
    Plain,
    /// JSON.
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "stepup",
    version,
    about = "Adaptive step-up MFA policies as code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse, check and lint policy files.
    Check {
        /// Files or directories (default `rules/`).
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Format policy files canonically, in place.
    Fmt {
        /// Files or directories (default `rules/`).
        paths: Vec<PathBuf>,
        /// Do not write: list the files that would change and exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Replay scenario files through the engine.
    Replay(replay::ReplayArgs),
    /// Decide logged traffic again with candidate rules: friction per policy and the decisions
    /// that change.
    Backtest(backtest::BacktestArgs),
    /// Explain a diagnostic code (`stepup explain E007`, `stepup explain S001`), or list every
    /// code.
    Explain {
        /// A code (error, lint or note) or its name.
        code: Option<String>,
    },
}

/// Runs the command line with these arguments (the first is the program name).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
        } => check::check(&default_paths(paths), format, deny_warnings, &mut out),
        Command::Fmt { paths, check } => check::fmt(&default_paths(paths), check, &mut out),
        Command::Explain { code } => explain(code.as_deref(), &mut out),
        Command::Replay(a) => replay::replay(&a, &mut out),
        Command::Backtest(a) => backtest::backtest(&a, &mut out),
    };
    let _ = out.flush();
    ExitCode::from(code)
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    }
}

/// Whether to colour output written to stdout.
fn color(format: Format) -> bool {
    format == Format::Human
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
}

fn explain(code: Option<&str>, out: &mut dyn Write) -> u8 {
    match code {
        None => {
            for d in stepup_dsl::codes::all() {
                let _ = writeln!(out, "{}  {:<28} {}", d.code, d.name, d.what);
            }
            0
        }
        Some(c) => match stepup_dsl::codes::find(c).or_else(|| {
            // A retired code: its successor, said so first.
            let new = stepup_dsl::codes::successor(c)?;
            let _ = writeln!(
                out,
                "{} is no longer used: it became the lint {new} (a warning; the rules load)\n",
                c.to_uppercase()
            );
            stepup_dsl::codes::find(new)
        }) {
            Some(d) => {
                // A lint flags something; an error or a note says what happened.
                let (what, why) = if d.code.starts_with('S') {
                    ("What it does", "Why it matters")
                } else {
                    ("What it means", "Why it matters")
                };
                let _ = writeln!(
                    out,
                    "{} {}\n\n{what}\n  {}\n\n{why}\n  {}\n\nExample\n{}",
                    d.code,
                    d.name,
                    d.what,
                    d.why,
                    indent(d.example)
                );
                0
            }
            None => {
                eprintln!("error: unknown code `{c}`; `stepup explain` lists them");
                2
            }
        },
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}
